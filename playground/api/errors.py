"""Errors the HTTP API answers with, in OpenAI's shape: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

from dataclasses import dataclass

from playground.errors import PlaygroundError

# OpenAI's error type for each status the API uses.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
}


@dataclass
class ApiError(PlaygroundError):
    """A refused request: its HTTP status, a message for the caller and a machine-readable code."""

    status: int
    message: str
    code: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def type(self) -> str:
        return ERROR_TYPES.get(self.status, "invalid_request_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.code}}


def bad_request(message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code)


def as_api_error(exc: BaseException) -> ApiError:
    """What the caller is told about a failure: a service's own message, or a server error."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PlaygroundError):
        return bad_request(str(exc), "invalid_request")
    return ApiError(500, "The server failed on this request; its log says why.", "server_error")
