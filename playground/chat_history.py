"""Chat history per owner: each conversation one JSON file, written atomically, reloadable.

An owner is a login name, or a random id that one browser keeps; owners are stored under a hash
of their name, so no owner text ever becomes a path, and one owner cannot name another's files.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.atomic import atomic_write_json, atomic_write_text
from playground.errors import PlaygroundError
from playground.paths import data_dir

MAX_CONVERSATIONS = 50  # per owner; the oldest are dropped
MAX_MESSAGES = 400
MAX_MESSAGE_CHARS = 100_000
_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    updated: float


def new_browser_id() -> str:
    return uuid.uuid4().hex


def owner_name(username: str | None, browser_id: str | None) -> str | None:
    """Who a chat belongs to: the login when there is one, else the browser's own id."""
    if username:
        return f"user:{username}"
    if browser_id and _BROWSER_ID.fullmatch(browser_id):
        return f"browser:{browser_id}"
    return None


def _owner_dir(owner: str) -> Path:
    return data_dir() / "chats" / hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]


def _path(owner: str, conversation_id: str) -> Path:
    if not _CONVERSATION_ID.fullmatch(conversation_id or ""):
        raise PlaygroundError("No such conversation.")
    return _owner_dir(owner) / f"{conversation_id}.json"


def clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Only user and assistant turns, as plain text, within the size limits."""
    kept = [
        {"role": str(m.get("role")), "content": str(m.get("content") or "")[:MAX_MESSAGE_CHARS]}
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    ]
    return kept[-MAX_MESSAGES:]


def title_of(messages: list[dict[str, str]]) -> str:
    first = next((m["content"] for m in messages if m["role"] == "user"), "")
    line = " ".join(first.split())
    return (line[:60] + "…") if len(line) > 60 else (line or "(empty)")


def save_conversation(owner: str, conversation_id: str | None, messages: list[dict[str, Any]]) -> str | None:
    """Store the conversation (a new one when the id is None); its id, or None when it is empty."""
    kept = clean_messages(messages)
    if not kept:
        return conversation_id
    conversation_id = conversation_id or uuid.uuid4().hex
    path = _path(owner, conversation_id)
    atomic_write_json(path, {"title": title_of(kept), "updated": time.time(), "messages": kept})
    _drop_oldest(owner)
    return conversation_id


def load_conversation(owner: str, conversation_id: str) -> list[dict[str, str]]:
    path = _path(owner, conversation_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlaygroundError("That conversation is gone.") from exc
    return clean_messages(data.get("messages") or [])


def list_conversations(owner: str) -> list[ConversationInfo]:
    """Newest first."""
    found = []
    folder = _owner_dir(owner)
    for path in folder.glob("*.json") if folder.is_dir() else []:
        if not _CONVERSATION_ID.fullmatch(path.stem):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(ConversationInfo(path.stem, str(data.get("title", "")), float(data.get("updated", 0))))
    return sorted(found, key=lambda c: c.updated, reverse=True)


def _drop_oldest(owner: str) -> None:
    for old in list_conversations(owner)[MAX_CONVERSATIONS:]:
        _path(owner, old.id).unlink(missing_ok=True)


def as_markdown(messages: list[dict[str, Any]]) -> str:
    """The conversation as Markdown: a heading per turn, the text as written."""
    parts = []
    for m in clean_messages(messages):
        who = "User" if m["role"] == "user" else "Assistant"
        parts.append(f"**{who}:**\n\n{m['content'].strip()}")
    return "\n\n---\n\n".join(parts) + ("\n" if parts else "")


def browser_secret() -> str:
    """The key that encrypts the browser's id in its storage; the same across restarts of the app."""
    path = data_dir() / "browser-secret"
    try:
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    except OSError:
        pass
    value = secrets.token_hex(16)
    atomic_write_text(path, value)
    return value
