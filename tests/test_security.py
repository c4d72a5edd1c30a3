"""Security: the launched app serves only its own files, caps uploads, asks for a login when told
to, and never runs code from a model or adapter folder unless the operator allows remote code.

Requests go over a raw socket, so `../` and `%2e%2e` reach the server exactly as typed (HTTP
clients would normalise them away first).
"""

from __future__ import annotations

import json
import pickle
import socket
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from playground.errors import ModelLoadError, PlaygroundError

REPO = Path(__file__).resolve().parents[1]
PASSWD = "/etc/passwd"
PASSWD_MARK = b"root:"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(ctx):
    from playground.ui.app import build_app, launch_kwargs

    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=4, max_size=64)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs()
    )
    return demo, port


def raw_get(port: int, target: str, cookie: str = "") -> tuple[int, bytes]:
    """GET `target` byte for byte as given; returns (status, body)."""
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app (no model needed to serve files), plus secrets it must never hand out."""
    root = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAYGROUND_DATA_DIR", str(root / "data"))
        mp.setenv("PLAYGROUND_ADAPTERS_DIR", str(root / "adapters"))
        mp.delenv("PLAYGROUND_AUTH", raising=False)
        from playground.context import AppContext
        from playground.data import save_upload
        from playground.leaderboard import RunSpec

        ctx = AppContext()
        board = ctx.leaderboard  # creates data/leaderboard.sqlite3
        board.start_run(RunSpec(model="m", task="t", dataset_name="secret-set"))
        homework = root / "homework.json"
        upload_mark = f"other-student-{uuid.uuid4().hex}"
        homework.write_text(json.dumps([{"instruction": upload_mark, "output": "x"}]), encoding="utf-8")
        other_upload = save_upload(homework)  # data/uploads/..., as the data picker stores it
        adapter = root / "adapters" / "mine"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text('{"adapter-mark": 1}', encoding="utf-8")
        link = root / "data" / "passwd-link.json"
        link.symlink_to(PASSWD)
        demo, port = _launch(ctx)
        secrets = {
            "passwd": (PASSWD, PASSWD_MARK),
            "database": (str(root / "data" / "leaderboard.sqlite3"), b"SQLite format 3"),
            "upload": (str(other_upload), upload_mark.encode()),
            "adapter": (str(adapter / "adapter_config.json"), b"adapter-mark"),
            "symlink": (str(link), PASSWD_MARK),
            "source": (str(REPO / "app.py"), b"def main()"),
        }
        yield demo, port, secrets
        demo.close()


def _upload(port: int, name: str, data: bytes, cookie: str = "") -> httpx.Response:
    headers = {"Cookie": cookie} if cookie else {}
    return httpx.post(
        f"http://127.0.0.1:{port}/gradio_api/upload",
        files=[("files", (name, data, "application/json"))],
        headers=headers,
        timeout=30,
    )


def test_uploaded_file_is_served_back_to_its_uploader(served):
    """The control: the file route works, so the refusals below are real refusals."""
    _, port, _ = served
    assert raw_get(port, "/config")[0] == 200  # no login in this app: refusals below are file rules
    body = b'[{"instruction": "mine"}]'
    response = _upload(port, "mine.json", body)
    assert response.status_code == 200
    [path] = response.json()
    status, got = raw_get(port, "/gradio_api/file=" + path)
    assert status == 200 and body in got


def _variants(path: str, upload_dir: str) -> list[str]:
    up = "../" * 12
    rel = up + path.lstrip("/")
    return [
        f"/file={path}",
        f"/gradio_api/file={path}",
        f"/gradio_api/file={quote(path, safe='')}",
        f"/gradio_api/file=/{path}",
        f"/gradio_api/file={rel}",
        f"/gradio_api/file={quote(rel, safe='')}",
        f"/gradio_api/file={rel.replace('../', '%2e%2e/')}",
        f"/gradio_api/file={rel.replace('../', '%252e%252e%252f')}",
        f"/gradio_api/file={rel.replace('../', '..%5c')}",
        f"/gradio_api/file={upload_dir}/{rel}",
        f"/gradio_api/file={quote(upload_dir + '/' + rel, safe='')}",
        f"/file={upload_dir}/{rel}",
        f"/static/{rel}",
        f"/assets/{rel}",
        f"/gradio_api/static/{rel}",
        f"/favicon.ico/{rel}",
        f"/gradio_api/file={path}%00.json",
    ]


@pytest.mark.parametrize("secret", ["passwd", "database", "upload", "adapter", "symlink", "source"])
def test_files_outside_the_apps_own_folders_are_refused(served, secret):
    _, port, secrets = served
    path, mark = secrets[secret]
    upload_dir = str(Path(_upload(port, "probe.json", b"[]").json()[0]).parent)
    for target in _variants(path, upload_dir):
        status, body = raw_get(port, target)
        assert mark not in body, f"{target} leaked {secret}"
        if "file=" in target:
            assert status in (400, 403, 404), f"{target} answered {status}"


def test_a_symlink_planted_in_the_served_upload_folder_is_refused(served):
    _, port, _ = served
    [path] = _upload(port, "planted.json", b'{"x": 1}').json()
    link = Path(path).parent / f"link-{uuid.uuid4().hex[:6]}.json"
    link.symlink_to(PASSWD)
    try:
        status, body = raw_get(port, "/gradio_api/file=" + str(link))
    finally:
        link.unlink()
    assert status == 403 and PASSWD_MARK not in body


def test_upload_size_limit_is_set_and_enforced(served):
    from gradio.utils import _parse_file_size

    from playground.data import DEFAULT_MAX_BYTES
    from playground.ui.app import MAX_UPLOAD

    demo, port, _ = served
    # The web server refuses what the data loader would refuse anyway, before it lands on disk.
    assert demo.max_file_size == _parse_file_size(MAX_UPLOAD) == DEFAULT_MAX_BYTES
    # Sending 200 MB through a test is slow: lower the live limit to prove the server enforces it.
    demo.max_file_size = 1000
    try:
        too_big = _upload(port, "big.json", b"[" + b" " * 4000 + b"]")
        fits = _upload(port, "small.json", b"[]")
    finally:
        demo.max_file_size = DEFAULT_MAX_BYTES
    assert too_big.status_code == 413
    assert fits.status_code == 200


# -- login -------------------------------------------------------------------------------------


def test_auth_from_env_parses_pairs_and_rejects_malformed():
    from playground.ui.app import auth_from_env

    assert auth_from_env("alice:s3cret, bob:pa:ss") == [("alice", "s3cret"), ("bob", "pa:ss")]
    assert auth_from_env("") is None
    for bad in ("alice", "alice:", ":secret"):
        with pytest.raises(ValueError, match="user:password"):
            auth_from_env(bad)


def test_playground_auth_requires_login(tmp_path, monkeypatch):
    from playground.context import AppContext

    monkeypatch.setenv("PLAYGROUND_AUTH", "alice:wonderland")
    demo, port = _launch(AppContext())
    base = f"http://127.0.0.1:{port}"
    try:
        for target in ("/config", "/gradio_api/info", f"/gradio_api/file={PASSWD}"):
            status, body = raw_get(port, target)
            assert status == 401 and PASSWD_MARK not in body, target
        assert _upload(port, "x.json", b"[]").status_code == 401
        wrong = httpx.post(f"{base}/login", data={"username": "alice", "password": "rabbit"}, timeout=30)
        assert wrong.status_code >= 400
        ok = httpx.post(f"{base}/login", data={"username": "alice", "password": "wonderland"}, timeout=30)
        assert ok.status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in ok.cookies.items())
        assert raw_get(port, "/config", cookie)[0] == 200
        # Logged in is not a way around the file rules.
        status, body = raw_get(port, f"/gradio_api/file={PASSWD}", cookie)
        assert status == 403 and PASSWD_MARK not in body
    finally:
        demo.close()


def test_readme_documents_login_and_that_a_public_space_is_public():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "PLAYGROUND_AUTH" in readme
    section = readme[readme.index("PLAYGROUND_AUTH") :]
    assert "public" in section.lower() and "Space" in section


# -- code in model and adapter folders ---------------------------------------------------------


def _custom_code_model(tmp_path: Path, tiny_llama: Path) -> tuple[Path, Path]:
    """A model folder whose config asks for its own Python code, which leaves a mark if it runs."""
    import shutil

    folder = tmp_path / "custom-code-model"
    shutil.copytree(tiny_llama, folder)
    marker = tmp_path / "CODE-RAN"
    (folder / "custom_modeling.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'playground_custom'\n"
        "class CustomModel(LlamaForCausalLM):\n    config_class = CustomConfig\n",
        encoding="utf-8",
    )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "playground_custom"
    config["auto_map"] = {
        "AutoConfig": "custom_modeling.CustomConfig",
        "AutoModelForCausalLM": "custom_modeling.CustomModel",
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder, marker


def test_remote_code_runs_only_when_the_operator_allows_it(tmp_path, tiny_llama):
    from playground.models import LoadOptions, load_model

    folder, marker = _custom_code_model(tmp_path, tiny_llama)
    assert LoadOptions().trust_remote_code is False
    with pytest.raises(ModelLoadError, match="PLAYGROUND_TRUST_REMOTE_CODE=1"):
        load_model(str(folder))
    assert not marker.exists()
    loaded = load_model(str(folder), LoadOptions(trust_remote_code=True, precision="fp32"))
    assert marker.exists() and type(loaded.model).__name__ == "CustomModel"


class _Payload:
    """Unpickling this writes a file: what a malicious adapter_model.bin would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def _pickled_adapter(tmp_path: Path, base: Path) -> tuple[Path, Path]:
    folder = tmp_path / "adapters" / "pickled"
    folder.mkdir(parents=True)
    marker = tmp_path / "UNPICKLED"
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": str(base),
    }
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    return folder, marker


def test_pickled_adapter_is_refused_with_a_message(tmp_path, tiny_llama):
    from playground.models import LoadOptions, load_model
    from playground.models.adapters import attach_adapter, list_adapter_names

    folder, marker = _pickled_adapter(tmp_path, tiny_llama)
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    with pytest.raises(PlaygroundError, match="pickled.*safetensors") as info:
        attach_adapter(loaded, folder)
    assert "pickled" in str(info.value) and not marker.exists()
    assert loaded.adapters == {}
    assert list_adapter_names() == ["pickled"]  # listed, so the refusal is what the user sees


def test_training_refuses_to_continue_from_a_pickled_adapter(tmp_path, tiny_llama):
    from playground.training import TrainingConfig, preflight

    folder, marker = _pickled_adapter(tmp_path, tiny_llama)
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": "a", "output": "b"}] * 4), encoding="utf-8")
    config = TrainingConfig(model=str(tiny_llama), data=str(data), resume_from=str(folder), output="x")
    with pytest.raises(PlaygroundError, match="pickled"):
        preflight(config)
    assert not marker.exists()
