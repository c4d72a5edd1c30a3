"""Two logged-in people in two browsers on one shared playground (issue 16): each sees the other's
results but changes only their own, and one's chat-adapter pick leaves the other's chat alone."""

from __future__ import annotations

import socket

import pytest

from playground.identity import Owner
from tests.helpers import pick, wait_for

ALICE = Owner("user:alice")


@pytest.fixture(scope="module")
def shared_server(app_server):
    """A second app with login on, sharing the first one's resident model and folders."""
    from playground.context import AppContext
    from playground.identity import Deployment
    from playground.ui.app import build_app, configure_queue, launch_kwargs

    ctx0, _ = app_server
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAYGROUND_AUTH", "alice:wonderland,bob:builder,root:toor")
        mp.setenv("PLAYGROUND_ADMINS", "root")
        ctx = AppContext(models=ctx0.models, deployment=Deployment.from_env("127.0.0.1"))
        demo = build_app(ctx)
        configure_queue(demo)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, **launch_kwargs())
        yield ctx, f"http://127.0.0.1:{port}/"
        demo.close()


@pytest.fixture
def open_as(browser, shared_server):
    _, url = shared_server
    contexts = []

    def open_page(user: str, password: str):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        assert context.request.post(url + "login", form={"username": user, "password": password}).ok
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#model-status").get_by_text("Loaded:").wait_for()
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_others_read_a_run_but_only_its_owner_deletes_it_or_sees_its_examples(shared_server, open_as):
    from playground.leaderboard import ExampleResult, RunSpec

    ctx, _ = shared_server
    board = ctx.leaderboard
    run = board.as_owner(ALICE).start_run(
        RunSpec(model="alices-model", task="t", dataset_name="alice-homework")
    )
    board.finish_run(run, {"accuracy": 0.5}, [ExampleResult(0, "alice's private prompt", "r", "p")])
    bob, alice = open_as("bob", "builder"), open_as("alice", "wonderland")
    for page in (bob, alice):
        page.get_by_role("tab", name="Leaderboard").click()
        pick(page, "#lb-dataset", "alice-homework")
        page.locator("#lb-runs").get_by_text("alices-model").filter(visible=True).first.wait_for()
    assert "alice" in bob.locator("#lb-runs").inner_text()
    # Bob reads the score, not the rows, and cannot delete the run.
    bob.locator("#lb-runs").get_by_text("alices-model").filter(visible=True).first.click()
    bob.locator("#lb-run-title").get_by_text("private to alice").wait_for()
    assert "alice's private prompt" not in bob.content()
    bob.get_by_label("Run id to delete").fill(str(run))
    bob.locator("#lb-delete").click()
    bob.get_by_text("belongs to alice").first.wait_for()
    assert board.run(run).status == "finished"
    # Alice sees her rows and deletes her run.
    alice.locator("#lb-runs").get_by_text("alices-model").filter(visible=True).first.click()
    alice.locator("#lb-examples").get_by_text("alice's private prompt").filter(visible=True).first.wait_for()
    alice.get_by_label("Run id to delete").fill(str(run))
    alice.locator("#lb-delete").click()
    wait_for(lambda: not any(r.id == run for r in board.runs()), timeout=30)


def test_one_users_adapter_pick_leaves_the_others_chat_on_the_base_model(shared_server, open_as, monkeypatch):
    from transformers import AutoModelForCausalLM

    from playground.paths import adapters_dir
    from tests.test_bad_input_ui import _lora

    ctx, _ = shared_server
    source = ctx.models.current.source
    if not (adapters_dir() / "alices-style").exists():
        _lora(AutoModelForCausalLM.from_pretrained(source), adapters_dir() / "alices-style", source)
    from playground.generation.engine import Engine

    used: list[str | None] = []
    plain_submit = Engine.submit

    def recording_submit(self, request, *args, **kwargs):
        used.append(request.adapter)  # the adapter each generation request runs with
        return plain_submit(self, request, *args, **kwargs)

    monkeypatch.setattr(Engine, "submit", recording_submit)
    alice, bob = open_as("alice", "wonderland"), open_as("bob", "builder")
    alice.locator("#chat-adapter input").click()
    alice.get_by_role("option", name="alices-style", exact=True).click()
    alice.locator("#model-status").get_by_text("Your chat uses adapter alices-style").wait_for()
    for page, text in ((alice, "hello from alice"), (bob, "hello from bob")):
        page.get_by_label("Max new tokens").last.fill("4")
        page.locator("#chat-input textarea").fill(text)
        page.locator("#chat-send").click()
        page.locator("#chat-stats").get_by_text("tokens").wait_for(timeout=60_000)
    assert used[-2:] == ["alices-style", None]
    assert "alices-style" not in bob.locator("#model-status").inner_text()
    assert bob.locator("#chat-adapter input").input_value() == "(none)"


def test_only_admins_see_the_model_loader_and_others_cannot_resume_a_job(shared_server, open_as, tmp_path):
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob

    ctx, _ = shared_server
    config = TrainingConfig(model="smollm2-135m-instruct", data="d.json", output="alices-job")
    job = TrainingJob.create(config, ctx.jobs.root, status="stopped", owner=ALICE.id)
    root, bob = open_as("root", "toor"), open_as("bob", "builder")
    root.locator("#model-load").wait_for(state="visible")
    assert not bob.locator("#model-load").is_visible()
    bob.get_by_role("tab", name="Training").click()
    bob.locator("#train-jobs").get_by_text(job.id).filter(visible=True).first.click()
    bob.locator("#train-resume").click()
    bob.get_by_text("belongs to alice").first.wait_for()
    assert job.status()["status"] == "stopped"
