"""A shared playground (issue 16), service by service: each finding of the attack is a test here.

Handlers are taken from the built app and called with fake requests that carry a user name or a
session, as gradio would pass them; tests/test_shared_http.py goes through HTTP, and
tests/browser/test_shared_browser.py through two logged-in browsers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from playground.errors import ModelLoadError, PlaygroundError
from playground.identity import SYSTEM, Deployment, Owner
from tests.helpers import wait_for

ALICE = Owner("user:alice")
BOB = Owner("user:bob")
ADMIN = Owner("user:root", is_admin=True)


def request(user: str | None = None, session: str = "s1") -> SimpleNamespace:
    return SimpleNamespace(username=user, session_hash=session)


def handlers_of(demo: gr.Blocks) -> dict:
    found: dict = {}
    for fn in demo.fns.values():
        found.setdefault(getattr(fn.fn, "__name__", ""), fn.fn)
    return found


def ui_message(call) -> str:
    with pytest.raises(gr.Error) as info:
        call()
    return str(info.value)


SHARED_LOGIN = Deployment(login=True, shared=True, admins=frozenset({"root"}))


# -- 1. remote code execution -------------------------------------------------------------------


def _code_model(folder: Path, tiny_llama: Path, marker: Path, auto_map_target: str) -> Path:
    """A model folder whose config sends transformers to `auto_map_target` for its code."""
    import shutil

    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoConfig": auto_map_target, "AutoModelForCausalLM": auto_map_target}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    code_dir = Path(auto_map_target.split("--")[0]) if "--" in auto_map_target else folder
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "custom_modeling.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n", encoding="utf-8"
    )
    return folder


def test_the_reported_rce_is_refused_at_every_step(tmp_path, tiny_llama, monkeypatch):
    """The attack: code and a config in gradio's upload folder, loaded with "trust remote code"."""
    from playground.context import AppContext
    from playground.ui.app import build_app

    uploads = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tmp_path / "models"))
    marker = tmp_path / "CODE-RAN"
    planted = _code_model(uploads / "abc123", tiny_llama, marker, f"{uploads / 'code'}--custom_modeling.Evil")
    demo = build_app(AppContext(deployment=SHARED_LOGIN))
    on_load = handlers_of(demo)["on_load"]
    # No page control turns remote code on.
    labels = [str(getattr(b, "label", "")).lower() for b in demo.blocks.values()]
    assert not any("remote code" in label for label in labels)
    # A logged-in user who is not an admin cannot load anything.
    assert "for admins" in ui_message(lambda: on_load(str(planted), "fp32", request("bob")))
    # An admin cannot load from the upload folder, even with remote code allowed by the operator.
    monkeypatch.setenv("PLAYGROUND_TRUST_REMOTE_CODE", "1")
    refused = ui_message(lambda: on_load(str(planted), "fp32", request("root")))
    assert "not a model this playground may load" in refused
    # Nor from a models folder whose config points at code elsewhere.
    allowed = _code_model(
        tmp_path / "models" / "m", tiny_llama, marker, f"{uploads / 'code2'}--custom_modeling.Evil"
    )
    assert "outside the model's own folder" in ui_message(
        lambda: on_load(str(allowed), "fp32", request("root"))
    )
    assert not marker.exists()
    demo.close()


def test_model_name_errors_do_not_reveal_which_server_paths_exist(tmp_path, monkeypatch):
    from playground.models.sources import check_model_source

    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tmp_path / "models"))
    existing, missing = "/etc", "/etc-no-such-folder"

    def refusal(name: str) -> str:
        with pytest.raises(ModelLoadError) as info:
            check_model_source(name)
        return str(info.value).replace(name, "NAME")

    assert refusal(existing) == refusal(missing)
    assert refusal("../../etc/passwd") == refusal("../../no/such")
    assert check_model_source("smollm2-135m-instruct") == "smollm2-135m-instruct"
    # Single-user: its user may load any folder of their machine, but not the ones users write into.
    assert check_model_source(str(tmp_path), shared=False) == str(tmp_path.resolve())
    from playground.paths import data_dir

    with pytest.raises(ModelLoadError):
        check_model_source(str(data_dir() / "uploads"), shared=False)
    assert check_model_source("org/model") == "org/model"


def test_a_pickled_model_is_refused_without_torchs_advice(tmp_path, tiny_llama):
    import pickle
    import shutil

    from playground.models import LoadOptions, load_model

    folder = tmp_path / "pickled-model"
    shutil.copytree(tiny_llama, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    marker = tmp_path / "UNPICKLED"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "x"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder), LoadOptions(precision="fp32"))
    assert "safetensors" in str(info.value)
    assert "weights_only" not in str(info.value) and str(tmp_path) not in str(info.value)
    assert not marker.exists()


# -- 2. path traversal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../../tmp/x", "x/../../y", "adapters/../../y", "..", "/tmp/abs", "a/b", "x\x00y", ""]
)
def test_adapter_names_that_leave_the_adapters_folder_are_refused(name, tmp_path):
    from playground.training import TrainingConfig

    config = TrainingConfig(data="d.json", output=f"adapters/{name}")
    if name == "":
        return  # no name: one is made from the model and data
    assert any("output" in problem for problem in config.problems()), name


def test_training_tab_refuses_a_traversal_adapter_name(tmp_path, tiny_llama, monkeypatch):
    """The attack as typed into the Training tab: the adapter folder must not appear outside."""
    from playground.context import AppContext
    from playground.ui.app import build_app

    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tiny_llama.parent))
    demo = build_app(AppContext(deployment=SHARED_LOGIN))
    on_start = handlers_of(demo)["on_start"]
    target = tmp_path / "escaped"
    for name in (f"../../../../../../../..{target}", "x/../../escaped"):
        args = [str(tiny_llama), "poem_continuation_train.json", None, "", None, "alpaca", name, "(none)"]
        args += [10, 0, "masked_prompt", "lora", 4, 8, 0.0, "q,v", 1e-3, "linear", 0, 1, 2, 1, 1, 64, 0, 0, 0]
        args += [False, False, False, ""]
        message = ui_message(lambda args=args: on_start(request("alice"), *args))
        assert "output" in message
    assert not target.exists() and not (tmp_path.parent / "escaped").exists()
    demo.close()


def test_named_paths_stay_inside_their_folder_even_through_symlinks(tmp_path):
    from playground.names import named_path, safe_file_name

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "evil.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(PlaygroundError, match="outside its folder"):
        named_path(folder, "evil", "recipe", ".json")
    for bad in ("../x", "a/b", "..", ".hidden", "x" * 101, None, 7):
        with pytest.raises(PlaygroundError, match="cannot be a recipe name"):
            named_path(folder, bad, "recipe")
    assert named_path(folder, " 唐詩 v2 ", "recipe", ".json") == folder / "唐詩 v2.json"
    assert safe_file_name("../../etc/passwd") == "etc_passwd"
    assert safe_file_name("..") == "file"


def test_job_ids_cannot_name_folders_outside_the_jobs_folder(tmp_path):
    from playground.training.jobs import JobManager

    jobs = JobManager(tmp_path / "jobs")
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "config.json").write_text("{}", encoding="utf-8")
    for job_id in ("../victim", "..", "a/../../victim", str(outside)):
        with pytest.raises(PlaygroundError, match="No training job"):
            jobs.job(job_id)


# -- 3. ownership ---------------------------------------------------------------------------------


def _data(tmp_path: Path, n: int = 8) -> Path:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps([{"instruction": f"q{i}", "output": f"a{i}"} for i in range(n)]), encoding="utf-8"
    )
    return path


def _stopped_job(root: Path, tiny_llama: Path, tmp_path: Path, owner: Owner) -> str:
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob

    config = TrainingConfig(model=str(tiny_llama), data=str(_data(tmp_path)), output="owned", max_steps=2)
    return TrainingJob.create(config, root, status="stopped", owner=owner.id).id


def test_only_the_owner_or_an_admin_stops_or_resumes_a_job(tmp_path, tiny_llama):
    from playground.training.jobs import JobManager

    jobs = JobManager(tmp_path / "jobs", worker_module="tests._training_slow_worker")
    job_id = _stopped_job(jobs.root, tiny_llama, tmp_path, ALICE)
    for action in (lambda: jobs.resume(job_id, by=BOB), lambda: jobs.stop(job_id, by=BOB)):
        with pytest.raises(PlaygroundError, match="belongs to alice"):
            action()
    assert jobs.job(job_id).status()["status"] == "stopped"
    jobs.close()  # nothing may start: the resume below only has to be accepted
    jobs.resume(job_id, by=ALICE)
    assert jobs.job(job_id).status()["status"] == "queued"
    jobs.stop(job_id, by=ADMIN)
    assert jobs.job(job_id).status()["status"] == "stopped"


def test_leaderboard_runs_delete_and_examples_belong_to_their_owner():
    from playground.leaderboard import ExampleResult, Leaderboard, RunSpec

    board = Leaderboard("sqlite://")
    run = board.as_owner(ALICE).start_run(RunSpec(model="m", task="t", dataset_name="homework"))
    board.finish_run(run, {"accuracy": 1.0}, [ExampleResult(0, "alice's secret prompt", "ref", "pred")])
    assert board.run(run).owner == ALICE.id
    # Scores are shared; the rows (the owner's data) are not, until published.
    assert board.leaderboard_table("homework", "accuracy")[0]["accuracy"] == 1.0
    with pytest.raises(PlaygroundError, match="private to alice"):
        board.examples(run, viewer=BOB)
    with pytest.raises(PlaygroundError, match="belongs to alice"):
        board.delete_run(run, by=BOB)
    with pytest.raises(PlaygroundError, match="belongs to alice"):
        board.publish_run(run, by=BOB)
    board.publish_run(run, by=ALICE)
    assert board.examples(run, viewer=BOB)[0].prompt == "alice's secret prompt"
    board.delete_run(run, by=ALICE)
    assert board.runs() == []


def test_a_database_from_before_owners_gets_the_new_columns(tmp_path):
    import sqlite3

    from playground.leaderboard import Leaderboard, RunSpec

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    Leaderboard(url).start_run(RunSpec(model="m", task="t", dataset_name="d"))
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        db.execute("CREATE TABLE runs_old AS SELECT * FROM runs")
        db.execute("DROP TABLE run_examples")
        db.execute("DROP TABLE runs")
        db.execute("ALTER TABLE runs_old RENAME TO runs")
        db.execute("ALTER TABLE runs DROP COLUMN owner")
        db.execute("ALTER TABLE runs DROP COLUMN published")
    board = Leaderboard(url)
    [record] = board.runs()
    assert record.owner is None and record.published is False
    with pytest.raises(PlaygroundError, match="private to the operator"):
        board.examples(record.id, viewer=BOB)


def test_a_recipe_is_never_overwritten_by_someone_else():
    from playground.prompts.fewshot import FewShotConfig, load_recipe, save_recipe
    from playground.prompts.templates import get_template

    save_recipe("tang", get_template("alpaca"), FewShotConfig(k=1), ALICE)
    with pytest.raises(PlaygroundError, match="belongs to alice"):
        save_recipe("tang", get_template("plain"), FewShotConfig(k=3), BOB)
    assert load_recipe("tang").config.k == 1  # bob can read it
    save_recipe("tang", get_template("plain"), FewShotConfig(k=2), ALICE)
    assert load_recipe("tang").config.k == 2


def test_owner_rules():
    deployment = Deployment(login=True, shared=True, admins=frozenset({"root"}))
    assert deployment.owner("root", "s").is_admin and not deployment.owner("alice", "s").is_admin
    # Single-user (no login, this machine only): its one user is the admin.
    assert Deployment().owner(None, "s").is_admin
    # Shared without login: sessions own their things, nobody is an admin.
    assert not Deployment(shared=True).owner(None, "s").is_admin
    assert not ALICE.can_manage(None) and ADMIN.can_manage(None) and SYSTEM.can_manage("user:x")


def test_deployment_from_env(monkeypatch):
    for name in ("PLAYGROUND_AUTH", "PLAYGROUND_SHARED", "PLAYGROUND_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    assert not Deployment.from_env("127.0.0.1").shared
    assert Deployment.from_env("0.0.0.0").shared
    monkeypatch.setenv("PLAYGROUND_AUTH", "a:b")
    monkeypatch.setenv("PLAYGROUND_ADMINS", "a, c")
    assert Deployment.from_env("127.0.0.1") == Deployment(True, True, frozenset({"a", "c"}))


# -- 4. per-session choices --------------------------------------------------------------------


def test_one_sessions_adapter_pick_does_not_change_anothers_chat(tmp_path, tiny_llama, monkeypatch):
    """Session A picks an adapter; session B's chat still runs on the base model."""
    from transformers import AutoModelForCausalLM

    from playground.context import AppContext
    from playground.models import LoadOptions
    from playground.paths import adapters_dir
    from playground.ui.app import build_app
    from tests.test_bad_input_ui import _lora

    ctx = AppContext(deployment=SHARED_LOGIN)
    ctx.models.load(str(tiny_llama), LoadOptions(precision="fp32"))
    _lora(AutoModelForCausalLM.from_pretrained(tiny_llama), adapters_dir() / "poems", str(tiny_llama))
    from playground.generation.engine import Engine

    used: list[str | None] = []
    plain_submit = Engine.submit

    def recording_submit(self, request, *args, **kwargs):
        used.append(request.adapter)  # the adapter each generation request runs with
        return plain_submit(self, request, *args, **kwargs)

    monkeypatch.setattr(Engine, "submit", recording_submit)
    demo = build_app(ctx)
    fns = handlers_of(demo)
    status, picked = fns["on_adapter"]("poems")
    assert picked == "poems" and not hasattr(ctx, "chat_adapter")
    history = [{"role": "user", "content": "hi"}]
    # mode, system, template, custom, temperature, top-p, top-k, min-p, typical-p, max new, rep, seed, stops
    settings = ["answer", "", "plain", "", 0, 0.9, 50, 0.0, 1.0, 4, 1.0, 0, ""]
    list(fns["respond"](history, *settings, None, request(session="B")))
    list(fns["respond"](history, *settings, picked, request(session="A")))
    assert used[-2:] == [None, "poems"]
    demo.close()


def test_another_users_adapter_is_neither_offered_nor_attached_in_chat(tmp_path, tiny_llama):
    """The chat's adapter list holds the user's own adapters (and the operator's); picking another
    user's by name is refused and attaches nothing."""
    from playground.context import AppContext
    from playground.models import LoadOptions
    from playground.ui.app import build_app
    from playground.ui.model_bar import adapter_choices
    from tests.test_column_models import _adapter_of

    ctx = AppContext(deployment=SHARED_LOGIN)
    ctx.models.load(str(tiny_llama), LoadOptions(precision="fp32"))
    _adapter_of("user:alice", "alice-poems", tiny_llama)
    demo = build_app(ctx)
    fns = handlers_of(demo)
    offered = {c[1] if isinstance(c, tuple) else c for c in adapter_choices(ctx, request("alice"))["choices"]}
    assert "alice-poems" in offered
    offered = {c[1] if isinstance(c, tuple) else c for c in adapter_choices(ctx, request("bob"))["choices"]}
    assert "alice-poems" not in offered
    message = ui_message(lambda: fns["on_adapter"]("alice-poems", request("bob")))
    assert "belongs to another user" in message
    assert ctx.models.current.adapters == {}
    status, picked = fns["on_adapter"]("alice-poems", request("alice"))
    assert picked == "alice-poems"
    demo.close()


# -- 7. job lifecycle -------------------------------------------------------------------------


def test_resume_right_after_stop_runs_the_job_again(tmp_path, tiny_llama):
    """The worker says "stopped" a moment before its process exits; a resume in that moment ran
    into "failed ... exited with code 0" and never ran."""
    from playground.training import TrainingConfig
    from playground.training.jobs import JobManager

    jobs = JobManager(tmp_path / "jobs", worker_module="tests._lingering_worker", poll_s=0.05)
    config = TrainingConfig(model=str(tiny_llama), data=str(_data(tmp_path)), output="linger", max_steps=2)
    job_id = jobs.submit(config, owner=ALICE)
    job = jobs.job(job_id)
    wait_for(lambda: job.status().get("status") == "running", timeout=60)
    jobs.stop(job_id, by=ALICE)
    wait_for(lambda: job.status().get("status") == "stopped", timeout=60)
    jobs.resume(job_id, by=ALICE)
    final = jobs.wait(job_id, timeout=60)
    assert final["status"] == "finished", final
    assert (job.dir / "runs.txt").read_text().split() == ["run", "run"]
    jobs.close()


def test_a_job_whose_worker_is_gone_shows_interrupted_at_once(tmp_path, tiny_llama):
    """kill -9 of the app, then of its orphaned worker: the restarted app showed "running" forever."""
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob
    from playground.training.jobs import JobManager

    root = tmp_path / "jobs"
    config = TrainingConfig(model=str(tiny_llama), data=str(_data(tmp_path)), output="orphan", max_steps=2)
    job = TrainingJob.create(config, root, status="running", owner=ALICE.id)
    # The orphan: a process whose command line names the job, as a worker's does.
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(job.dir)])
    job.update_status(pid=orphan.pid)
    jobs = JobManager(root, poll_s=0.05)  # the restarted app finds the worker alive
    assert jobs.jobs()[0].status == "running"
    os.kill(orphan.pid, signal.SIGKILL)
    orphan.wait()
    info = wait_for(lambda: jobs.jobs()[0].status == "interrupted" and jobs.jobs()[0], timeout=5)
    assert "resume" in info.message and jobs.running() is None
    jobs.close()
    jobs.resume(job.id, by=ALICE)  # and it can be resumed
    assert job.status()["status"] == "queued"


# -- 8. limits ------------------------------------------------------------------------------------


def test_jobs_per_user_and_steps_are_limited_in_shared_mode(tmp_path, tiny_llama, monkeypatch):
    from playground.training import TrainingConfig
    from playground.training.jobs import JobManager

    monkeypatch.setenv("PLAYGROUND_SHARED", "1")
    monkeypatch.setenv("PLAYGROUND_MAX_JOBS_PER_USER", "1")
    monkeypatch.setenv("PLAYGROUND_MAX_TRAIN_STEPS", "50")
    jobs = JobManager(tmp_path / "jobs", worker_module="tests._training_slow_worker")
    jobs.close()  # jobs stay queued
    data = str(_data(tmp_path))

    def config(name: str, steps: int) -> TrainingConfig:
        return TrainingConfig(model=str(tiny_llama), data=data, output=name, max_steps=steps)

    with pytest.raises(PlaygroundError, match="allows up to 50 per job"):
        jobs.submit(config("huge", 10**9), owner=ALICE)
    jobs.submit(config("first", 5), owner=ALICE)
    with pytest.raises(PlaygroundError, match="allows 1 at a time"):
        jobs.submit(config("second", 5), owner=ALICE)
    jobs.submit(config("bobs", 5), owner=BOB)  # another user is not held back by alice's jobs
    jobs.submit(config("admins", 5), owner=ADMIN)


def test_limits_come_from_the_environment(monkeypatch):
    from playground.limits import Limits

    assert Limits.from_env(shared=False).jobs_per_user == 0
    shared = Limits.from_env(shared=True)
    assert shared.jobs_per_user and shared.train_steps and shared.new_tokens and shared.model_requests
    monkeypatch.setenv("PLAYGROUND_MAX_NEW_TOKENS", "7")
    assert Limits.from_env(shared=True).new_tokens == 7
    monkeypatch.setenv("PLAYGROUND_MAX_NEW_TOKENS", "lots")
    with pytest.raises(PlaygroundError, match="PLAYGROUND_MAX_NEW_TOKENS must be a whole number"):
        Limits.from_env(shared=True)


def test_rows_per_file_and_big_files_at_once_are_limited(tmp_path, monkeypatch):
    import threading

    import playground.data as data_module
    from playground.data import load_dataset

    monkeypatch.setenv("PLAYGROUND_MAX_ROWS", "5")
    with pytest.raises(PlaygroundError, match="has 8 rows; this playground reads up to 5"):
        load_dataset(_data(tmp_path, 8))
    monkeypatch.delenv("PLAYGROUND_MAX_ROWS")
    # One big file at a time: a second waits, and gives up with a message after the wait.
    monkeypatch.setattr(data_module, "BIG_FILE_BYTES", 10)
    monkeypatch.setattr(data_module, "PARSE_WAIT_S", 0.2)
    monkeypatch.setattr(data_module, "_parse_slots", threading.BoundedSemaphore(1))
    data_module._parse_slots.acquire()  # someone else is reading a big file
    with pytest.raises(PlaygroundError, match="reading other large files"):
        load_dataset(_data(tmp_path, 8))
    data_module._parse_slots.release()
    assert len(load_dataset(_data(tmp_path, 8)).examples) == 8


# -- 5. uploads -----------------------------------------------------------------------------------


def test_uploads_are_stored_once_by_content_and_cleaned_by_quota(tmp_path, monkeypatch):
    from playground.data import save_upload, uploads_dir

    first = tmp_path / "a.json"
    first.write_bytes(b"[" + b" " * 600_000 + b"]")
    saved = [save_upload(first, ALICE.id) for _ in range(5)]
    assert len(set(saved)) == 1 and len(list(uploads_dir(ALICE.id).iterdir())) == 1
    assert uploads_dir(ALICE.id) != uploads_dir(BOB.id) and "alice" not in str(saved[0])
    monkeypatch.setenv("PLAYGROUND_UPLOAD_QUOTA_MB", "1")
    second = tmp_path / "b.json"
    second.write_bytes(b"[" + b"\n" * 600_000 + b"]")
    time.sleep(0.01)
    kept = save_upload(second, ALICE.id)
    assert list(uploads_dir(ALICE.id).iterdir()) == [kept]  # the oldest went to stay within 1 MB
    monkeypatch.setenv("PLAYGROUND_UPLOAD_MAX_AGE_DAYS", "1")
    os.utime(kept, (time.time() - 3 * 86400,) * 2)
    fresh = save_upload(first, ALICE.id)
    assert list(uploads_dir(ALICE.id).iterdir()) == [fresh]


def test_describing_an_upload_copies_nothing_and_the_mapping_box_applies_on_submit(tmp_path):
    from playground.context import AppContext
    from playground.paths import data_dir
    from playground.ui.app import build_app

    demo = build_app(AppContext())
    upload = _data(tmp_path)
    on_data_change = handlers_of(demo)["on_data_change"]
    for typed in ("i", "in", "instruction=instruction"):
        on_data_change(None, str(upload), None, typed)
    assert not (data_dir() / "uploads").exists() or not any((data_dir() / "uploads").rglob("*.json"))
    # The mapping box is wired to submit and blur, never to each keystroke.
    mapping = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "eval-mapping")
    triggers = {t[1] for fn in demo.fns.values() for t in fn.targets if t[0] == mapping._id}
    assert triggers == {"submit", "blur"}
    assert demo.delete_cache and demo.delete_cache[1] <= 86400
    demo.close()


# -- 9. smaller findings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("temperature", float("nan")), ("temperature", float("inf")), ("max_new_tokens", 1e30), ("seed", 1e30)],
)
def test_chat_api_numbers_are_bounded(field, value):
    from playground.context import AppContext
    from playground.ui.app import build_app

    demo = build_app(AppContext())
    chat = handlers_of(demo)["chat"]
    message = ui_message(lambda: list(chat("hi", **{field: value})))
    assert "must be" in message and "Unexpected" not in message
    demo.close()


def test_chat_max_new_tokens_is_limited_in_shared_mode(monkeypatch):
    from playground.ui.chat import decoding_from_ui

    monkeypatch.setenv("PLAYGROUND_SHARED", "1")
    monkeypatch.setenv("PLAYGROUND_MAX_NEW_TOKENS", "100")
    with pytest.raises(PlaygroundError, match="allows up to 100"):
        decoding_from_ui(0.7, 0.9, 50, 101, 1.0, 0)
    assert decoding_from_ui(0.7, 0.9, 50, 100, 1.0, 0).max_new_tokens == 100


def test_a_5000_digit_integer_gives_a_data_message(tmp_path):
    from playground.data import load_dataset

    for name, text in (
        ("big.json", '[{"instruction": "x", "output": ' + "9" * 5000 + "}]"),
        ("big.jsonl", '{"instruction": "x", "output": ' + "9" * 5000 + "}\n"),
    ):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PlaygroundError, match="thousands of digits"):
            load_dataset(path)


def test_a_100k_column_csv_gives_a_short_message(tmp_path):
    from playground.data import load_dataset

    path = tmp_path / "wide.csv"
    header = ",".join(f"column_number_{i}" for i in range(100_000))
    path.write_text(header + "\n" + ",".join("x" for _ in range(100_000)) + "\n", encoding="utf-8")
    with pytest.raises(PlaygroundError) as info:
        load_dataset(path)
    assert len(str(info.value)) < 2000 and "100,000 columns" in str(info.value)


def test_csv_export_cannot_carry_formulas():
    import csv
    import io

    from playground.leaderboard import Leaderboard, RunSpec

    board = Leaderboard("sqlite://")
    run = board.start_run(RunSpec(model="=SUM(1+1)*cmd|' /C calc'!A0", task="@t", dataset_name="+d"))
    board.finish_run(run, {"loss": -1.5}, [])
    [row] = list(csv.DictReader(io.StringIO(board.to_csv())))
    assert row["model"].startswith("'=") and row["task"] == "'@t" and row["dataset_name"] == "'+d"
    assert row["loss"] == "-1.5"  # numbers stay numbers
