"""A shared playground over HTTP only, as the attacker of issue 16 tried it: what a logged-out
visitor can read, guessing passwords, the remote-code attack, and one greedy client."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from playground.identity import Owner

USERS = "alice:wonderland,bob:builder,root:toor"
SECRETS = ("secret-recipe-7f3a", "secret-adapter-7f3a", "secret-dataset-7f3a", "secret-job-7f3a")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ctx, throttle=None, limits=None):
    from playground.ui.app import build_app, configure_queue, launch_kwargs

    demo = build_app(ctx)
    configure_queue(demo, limits)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_kwargs(throttle),
    )
    return demo, f"http://127.0.0.1:{port}"


def login(base: str, user: str, password: str) -> httpx.Response:
    return httpx.post(f"{base}/login", data={"username": user, "password": password}, timeout=30)


@pytest.fixture
def shared_app(tmp_path, monkeypatch, tiny_llama):
    """Login on; alice has made one of each thing; root is the admin."""
    monkeypatch.setenv("PLAYGROUND_AUTH", USERS)
    monkeypatch.setenv("PLAYGROUND_ADMINS", "root")
    from playground.context import AppContext
    from playground.leaderboard import RunSpec
    from playground.paths import adapters_dir
    from playground.prompts.fewshot import FewShotConfig, save_recipe
    from playground.prompts.templates import get_template
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob, jobs_root

    alice = Owner("user:alice")
    ctx = AppContext()
    save_recipe(SECRETS[0], get_template("plain"), FewShotConfig(), alice)
    (adapters_dir() / SECRETS[1]).mkdir(parents=True)
    (adapters_dir() / SECRETS[1] / "adapter_config.json").write_text("{}", encoding="utf-8")
    ctx.leaderboard.as_owner(alice).start_run(RunSpec(model="m", task="t", dataset_name=SECRETS[2]))
    config = TrainingConfig(model=str(tiny_llama), data="d.json", output=SECRETS[3])
    TrainingJob.create(config, folder=jobs_root() / SECRETS[3], status="stopped", owner=alice.id)
    clock = [0.0]
    from playground.login_throttle import LoginThrottle

    throttle = LoginThrottle(free_failures=3, base_delay_s=10, clock=lambda: clock[0])
    demo, base = launch(ctx, throttle)
    yield base, clock
    demo.close()


def test_a_logged_out_visitor_sees_only_the_login_form(shared_app):
    base, _ = shared_app
    page = httpx.get(f"{base}/", timeout=30)
    assert page.status_code == 200 and "auth_required" in page.text
    for secret in SECRETS:
        assert secret not in page.text, secret
    assert "window.gradio_api_info = {};" in page.text  # gradio embeds its API description here
    for path in ("/config", "/gradio_api/info", "/gradio_api/info?all_endpoints=true", "/gradio_api/user"):
        response = httpx.get(f"{base}{path}", timeout=30)
        assert response.status_code == 401 or response.json() in (None, ""), path
        assert not any(secret in response.text for secret in SECRETS), path
    upload = httpx.post(f"{base}/gradio_api/upload", files=[("files", ("x.json", b"[]"))], timeout=30)
    assert upload.status_code == 401
    # Logged in, the page is the app's (the control) and lists are filled by the page, not in it.
    cookies = login(base, "bob", "builder").cookies
    page = httpx.get(f"{base}/", cookies=cookies, timeout=30)
    assert "window.gradio_api_info = {};" not in page.text and "train-jobs" in page.text
    config = httpx.get(f"{base}/config", cookies=cookies, timeout=30)
    assert config.status_code == 200 and not any(secret in config.text for secret in SECRETS)


def test_wrong_passwords_lock_the_user_and_the_address_out(shared_app):
    base, clock = shared_app
    for _ in range(3):  # typos are free
        assert login(base, "alice", "guess").status_code == 400
    assert login(base, "alice", "guess").status_code == 400  # the 4th locks for 10 s
    locked = login(base, "alice", "wonderland")
    assert (
        locked.status_code == 429 and "Too many failed logins. Try again in 10 s" in locked.json()["detail"]
    )
    clock[0] += 11
    assert login(base, "alice", "guess").status_code == 400
    assert "in 20 s" in login(base, "alice", "wonderland").json()["detail"]  # the delay doubles
    clock[0] += 21
    assert login(base, "alice", "wonderland").status_code == 200
    # The address is counted too (alice's six failures were from it): one more name to guess locks it.
    assert login(base, "carol", "guess").status_code == 400
    assert login(base, "bob", "builder").status_code == 429
    clock[0] += 1000
    assert login(base, "bob", "builder").status_code == 200


def test_the_reported_rce_over_http_is_refused(shared_app, tmp_path, monkeypatch):
    """Upload custom code and a config whose auto_map points at it, then press Load."""
    from gradio_client import Client

    base, _ = shared_app
    monkeypatch.setenv("PLAYGROUND_TRUST_REMOTE_CODE", "1")  # even with the operator's consent
    marker = tmp_path / "CODE-RAN"
    code = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    cookies = login(base, "bob", "builder").cookies

    def upload(name: str, data: bytes) -> str:
        response = httpx.post(
            f"{base}/gradio_api/upload", files=[("files", (name, data))], cookies=cookies, timeout=30
        )
        assert response.status_code == 200
        return response.json()[0]

    code_dir = Path(upload("custom_modeling.py", code)).parent
    config = {"model_type": "llama", "auto_map": {"AutoConfig": f"{code_dir}--custom_modeling.Evil"}}
    folder = str(Path(upload("config.json", json.dumps(config).encode())).parent)
    upload("model.safetensors", b"x")
    for user, password, refusal in (
        ("bob", "builder", "for admins"),
        ("root", "toor", "not a model this playground may load"),
    ):
        client = Client(base, auth=(user, password), verbose=False)
        with pytest.raises(Exception, match=refusal):
            client.predict(folder, "fp32", api_name="/on_load")
        client.close()
    assert not marker.exists()


def test_a_greedy_client_cannot_keep_another_user_waiting(tmp_path, tiny_llama, monkeypatch):
    """One client sends 30 chat requests at once, then a second user sends one: the second user's
    request runs after at most `model_requests` of the greedy client's (the rest are refused)."""
    from gradio_client import Client

    from playground.context import AppContext
    from playground.limits import Limits
    from playground.models import LoadOptions

    monkeypatch.delenv("PLAYGROUND_AUTH", raising=False)
    ctx = AppContext()
    ctx.models.load(str(tiny_llama), LoadOptions(precision="fp32"))
    order: list[str] = []
    plain_use = ctx.models.use
    gate = threading.Event()

    @contextlib.contextmanager
    def recording_use(adapter=None):
        with plain_use(adapter) as loaded:
            gate.wait(30)  # hold the model until every request has been sent
            time.sleep(0.05)
            order.append(threading.current_thread().name)
            yield loaded

    ctx.models.use = recording_use
    demo, base = launch(ctx, limits=Limits(model_requests=2))
    try:
        greedy, normal = Client(base, verbose=False), Client(base, verbose=False)
        greedy_jobs = [greedy.submit("hi", "", 4, 0.0, 0, api_name="/chat") for _ in range(30)]
        time.sleep(1.0)
        # What the refusal says (gradio_client shows its own "Queue is full" instead).
        [fn_index] = [i for i, fn in demo.fns.items() if fn.api_name == "chat"]
        body = {"data": ["hi", "", 4, 0.0, 0], "fn_index": fn_index, "session_hash": greedy.session_hash}
        refused = httpx.post(f"{base}/gradio_api/queue/join", json=body, timeout=30)
        assert refused.status_code == 503 and "wait for one to finish" in refused.json()["detail"]
        normal_job = normal.submit("hello", "", 4, 0.0, 0, api_name="/chat")
        time.sleep(0.5)
        served_before: list[int] = []
        gate.set()
        normal_job.result(timeout=60)
        served_before.append(len(order) - 1)
        outcomes = []
        for job in greedy_jobs:
            try:
                job.result(timeout=60)
                outcomes.append("served")
            except Exception as exc:  # noqa: BLE001 - the refusal is what is counted
                outcomes.append("refused" if "Queue is full" in str(exc) else repr(exc))
        assert outcomes.count("served") == 2 and outcomes.count("refused") == 28, outcomes
        assert served_before[0] <= 2  # at most the greedy client's two requests went first
        greedy.close()
        normal.close()
    finally:
        gate.set()
        demo.close()
