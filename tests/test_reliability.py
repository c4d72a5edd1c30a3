"""Reliability: load on the launched app, processes killed mid-run, out-of-memory and full disks.

The load tests drive the real app (embedded model) through gradio_client with the sessions of
bench/soak.py, shortened. The fault tests kill real subprocesses (an evaluation, a training
job together with the app that started it) and check what a restarted app finds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bench.soak import run_sessions
from playground.errors import PlaygroundError
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"


def _oom(*args, **kwargs):
    # What torch raises when the GPU is full; raised by hand because there is no GPU here.
    raise torch.cuda.OutOfMemoryError(OOM)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Busy-waiting torch threads on a shared 2-core machine make decoding several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- load: the launched app under concurrent chat sessions ---------------------------------------


@pytest.fixture(scope="module")
def chat_app(tmp_path_factory):
    """The app on the embedded model, queued as app.py queues it; records when the model is taken."""
    root = tmp_path_factory.mktemp("chat-app")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAYGROUND_DATA_DIR", str(root / "data"))
        mp.setenv("PLAYGROUND_ADAPTERS_DIR", str(root / "adapters"))
        mp.delenv("PLAYGROUND_AUTH", raising=False)
        from playground.context import AppContext
        from playground.models import EMBEDDED_KEY
        from playground.ui.app import build_app, launch_kwargs

        ctx = AppContext()
        ctx.models.load(EMBEDDED_KEY)
        taken: list[float] = []
        plain_use = ctx.models.use

        @contextlib.contextmanager
        def recording_use(adapter=None):
            with plain_use(adapter) as loaded:
                taken.append(time.monotonic())
                yield loaded

        ctx.models.use = recording_use
        demo = build_app(ctx)
        demo.queue(default_concurrency_limit=4, max_size=64)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(
            server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs()
        )
        yield SimpleNamespace(ctx=ctx, demo=demo, url=f"http://127.0.0.1:{port}/", taken=taken)
        demo.close()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def test_model_events_wait_in_the_model_queue_and_generation_events_run_side_by_side(chat_app):
    """Loads, adapters and evaluations one at a time; generation handlers unlimited (the engine batches)."""
    generating, touching = set(), set()
    for fn in chat_app.demo.fns.values():
        try:
            source = inspect.getsource(inspect.unwrap(fn.fn))
        except (TypeError, OSError):
            continue
        name = fn.fn.__name__
        if fn.concurrency_id == "generation":
            generating.add(name)
            assert fn.queue and fn.concurrency_limit is None, name
            assert "ctx.models.load(" not in source and "attach_adapter" not in source, name
        elif "ctx.models.use(" in source or "ctx.models.load(" in source:
            touching.add(name)
            assert (fn.queue, fn.concurrency_id, fn.concurrency_limit) == (True, "model", 1), name
    assert {"run_eval", "on_load", "on_adapter"} <= touching
    assert {"respond", "chat", "on_try", "run_columns", "run_sweep"} <= generating


def test_concurrent_sessions_complete_or_are_cancelled_without_errors(chat_app):
    stats = run_sessions(chat_app.url, sessions=6, seconds=10, max_new_tokens=16, cancel_fraction=0.2)
    assert stats.errors == []
    assert stats.accounted, stats.summary()
    assert stats.completed >= 6, stats.summary()


def test_short_requests_are_answered_while_a_long_answer_streams(chat_app):
    """No queue behind one long answer any more: the engine decodes the others beside it."""
    prompt = "Write a very long story about a dragon who learns to bake bread."
    front = _client(chat_app.url).submit(prompt, "", 512, 0.7, 0, api_name="/chat")
    wait_for(lambda: front.outputs())
    others = [_client(chat_app.url).submit(f"Say {i}.", "", 4, 0.7, i, api_name="/chat") for i in range(4)]
    answers = [job.result(timeout=120) for job in others]
    streamed = len(front.outputs()[-1])
    assert not front.done(), f"the long answer ended first ({streamed} characters)"
    front.cancel()
    assert all(a.strip() for a in answers), answers


def _row_ends_after(url: str, engine, how: str) -> float:
    """Seconds from cancelling (or killing) a streaming chat until its engine row is gone."""
    from bench.soak import _KILLED_CLIENT, LONG_PROMPT

    if how == "cancel":
        front = _client(url).submit(LONG_PROMPT, "", 1024, 0.7, 0, api_name="/chat")
        wait_for(lambda: len(front.outputs()) >= 3)
        start = time.monotonic()
        front.cancel()
    else:
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_CLIENT, url, LONG_PROMPT], stdout=subprocess.PIPE
        )
        proc.stdout.readline()
        start = time.monotonic()
        proc.kill()
        proc.wait()
    wait_for(lambda: engine.snapshot().running == 0, timeout=30)
    return time.monotonic() - start


@pytest.mark.parametrize("how", ["cancel", "disconnect"])
def test_stopping_or_dropping_a_stream_ends_its_row_within_a_second(chat_app, how):
    from playground.generation.engine import engine_for

    engine = engine_for(chat_app.ctx.models.current)
    took = [_row_ends_after(chat_app.url, engine, how) for _ in range(3)]
    # The median of three: the CI machine is shared, and one slow moment is not a leak.
    assert statistics.median(took) < 1.0, took


def test_out_of_memory_in_chat_gives_advice_and_the_model_keeps_working(chat_app):
    from gradio_client.exceptions import AppError

    client = _client(chat_app.url)
    model = chat_app.ctx.models.current.model
    model.forward = _oom  # every batch step and prefill calls it
    try:
        with pytest.raises(AppError, match="Out of GPU memory.*fewer max new tokens.*still loaded"):
            client.predict("Hello", "", 8, 0.7, 0, api_name="/chat")
    finally:
        del model.forward
    assert client.predict("Hello", "", 8, 0.7, 0, api_name="/chat").strip()


# -- evaluation killed mid-run ---------------------------------------------------------------


def test_killed_evaluation_keeps_finished_rows_and_marks_its_run_interrupted(tmp_path, tiny_llama):
    from playground.context import AppContext
    from playground.leaderboard import ExampleResult, Leaderboard, RunSpec

    data = tmp_path / "kill-set.json"
    rows = [{"instruction": f"Say {i} twice", "input": "", "output": f"{i} {i}"} for i in range(120)]
    data.write_text(json.dumps(rows), encoding="utf-8")
    board = Leaderboard()
    earlier = board.start_run(RunSpec(model="earlier", task="perplexity", dataset_name="kill-set.json"))
    board.finish_run(earlier, {"mean_perplexity": 3.0}, [ExampleResult(idx=0, prompt="p", reference="r")])

    command = [sys.executable, "-m", "playground", "eval", "--model", str(tiny_llama), "--data", str(data)]
    command += ["--metrics", "perplexity", "--shots", "1", "--selection", "random", "--batch-size", "1"]
    command += ["--seeds", ",".join(map(str, range(1, 21)))]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    log = tmp_path / "eval.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def mid_run():
            mine = [r for r in board.runs() if r.pid == proc.pid]
            done = [r for r in mine if r.status == "finished"]
            running = [r for r in mine if r.status == "running"]
            assert proc.poll() is None, log.read_text()[-2000:]
            return len(done) >= 2 and running

        wait_for(mid_run, timeout=120, every=0.01)
    finally:
        proc.kill()
        proc.wait()
    board.close()

    restarted = AppContext().leaderboard  # what the app does on its first use after a restart
    runs = {r.id: r for r in restarted.runs()}
    mine = [r for r in runs.values() if r.pid == proc.pid]
    finished = [r for r in mine if r.status == "finished"]
    interrupted = [r for r in mine if r.status == "interrupted"]
    assert len(finished) >= 2 and len(interrupted) == 1
    assert f"pid {proc.pid}" in interrupted[0].message and restarted.examples(interrupted[0].id) == []
    for run in finished:
        assert len(restarted.examples(run.id)) == run.n_examples == len(rows)
        assert run.metrics["mean_perplexity"] > 1
    assert runs[earlier].status == "finished" and len(restarted.examples(earlier)) == 1
    assert not [r for r in runs.values() if r.status == "running"]
    with contextlib.closing(
        sqlite3.connect(str(Path(os.environ["PLAYGROUND_DATA_DIR"]) / "leaderboard.sqlite3"))
    ) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


# -- out of memory in evaluation, and in the UI --------------------------------------------------


def test_out_of_memory_in_evaluation_fails_the_run_with_advice_and_the_model_keeps_working(tiny_llama):
    from playground.data_types import Dataset, Example
    from playground.evaluation.runner import EvalConfig, evaluate
    from playground.generation.settings import GREEDY
    from playground.leaderboard import Leaderboard
    from playground.models import LoadOptions, load_model
    from playground.prompts.templates import get_template

    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    examples = [Example(str(i), f"Say {i}", "", f"{i}") for i in range(4)]
    dataset = Dataset("oom-set", examples, "alpaca", "", "sha", [])
    board = Leaderboard()
    template = get_template("plain")
    scoring = EvalConfig(metrics=("perplexity",), batch_size=4)
    generating = EvalConfig(metrics=("rouge",), batch_size=4, decoding=GREEDY.with_(max_new_tokens=4))
    for config, method, advice in (
        (scoring, "forward", "Lower the batch size"),
        (generating, "forward", "fewer max new tokens"),  # generation runs forward in the engine
    ):
        setattr(loaded.model, method, _oom)
        try:
            with pytest.raises(PlaygroundError, match=f"[Oo]ut of .*memory.*{advice}"):
                evaluate(loaded, dataset, template, config, leaderboard=board)
        finally:
            delattr(loaded.model, method)
        failed = board.runs(status="failed")[0]
        assert advice in failed.message
        [outcome] = evaluate(loaded, dataset, template, config, leaderboard=board)
        assert board.run(outcome.run_id).status == "finished"


def test_ui_turns_out_of_memory_and_a_full_disk_into_advice(tmp_path):
    from playground.atomic import atomic_write_text
    from playground.ui.common import user_errors

    @user_errors
    def oom_handler():
        _oom()

    with pytest.raises(Exception, match="Out of GPU memory.*Try fewer max new tokens") as info:
        oom_handler()
    assert type(info.value).__name__ == "Error"

    target = tmp_path / "export.csv"
    atomic_write_text(target, "old,export\n")

    @user_errors
    def save_handler():
        real_fsync = os.fsync

        def full_disk(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        os.fsync = full_disk
        try:
            atomic_write_text(target, "new,export\n" * 1000)
        finally:
            os.fsync = real_fsync

    with pytest.raises(Exception, match="disk is full") as info:
        save_handler()
    assert "Unexpected error" not in str(info.value)
    assert target.read_text() == "old,export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]  # no half-written temporary left


# -- training: the app killed mid-job, out of memory, a full disk --------------------------------

COLOURS = ["red", "blue", "green", "gold"]
TRAIN_ROWS = [
    {"instruction": "Say the colour", "input": f" {i}", "output": f"{COLOURS[i % 4]} fox"} for i in range(8)
]
STEPS = 16


@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("train-data") / "colours.json"
    path.write_text(json.dumps(TRAIN_ROWS), encoding="utf-8")
    return path


def train_config(model: Path, data: Path, output: str, **changes):
    from playground.training import TrainingConfig

    settings = dict(
        model=str(model),
        data=str(data),
        max_steps=STEPS,
        micro_batch=3,
        grad_accum=2,
        lr=2e-2,
        r=8,
        alpha=16,
        dropout=0.1,
        target_modules="all-linear",
        warmup_steps=2,
        save_every=4,
        output=output,
    )
    settings.update(changes)
    return TrainingConfig(**settings)


def adapter_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(Path(folder) / "adapter_model.safetensors")


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


_APP = """
import sys, time
from playground.training import JobManager, TrainingConfig
config = TrainingConfig.from_dict({config})
manager = JobManager(poll_s=0.05, worker_module="tests._training_slow_worker")
print(manager.submit(config), flush=True)
time.sleep(600)
"""


def test_app_killed_during_training_leaves_a_resumable_job_with_the_same_final_weights(
    tmp_path, tiny_llama, train_data, monkeypatch
):
    from playground.training import JobManager, Trainer, TrainingJob

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # every worker computes exactly like this process
    reference = Trainer(
        train_config(tiny_llama, train_data, str(tmp_path / "reference")), tmp_path / "reference-job"
    ).run()

    config = train_config(tiny_llama, train_data, "killed")
    script = _APP.format(config=repr(config.to_dict()))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # Its own session: killing the group takes the app and its training worker down together,
    # as a crash of the machine or `docker kill` would.
    app = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        job = TrainingJob(wait_for(lambda: _job_dir(app), timeout=60))
        kill_at = random.Random(os.getpid()).randint(5, STEPS - 2)  # after the first checkpoint (step 4)

        def reached():
            steps = [e["step"] for e in job.events()[0] if e["type"] == "step"]
            return steps and steps[-1] >= kill_at

        wait_for(reached, timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)
        app.wait()
    worker_pid = job.status()["pid"]
    wait_for(lambda: not Path(f"/proc/{worker_pid}").exists() or "Z" in _proc_state(worker_pid), timeout=10)

    manager = JobManager(poll_s=0.05)  # the restarted app
    [info] = [j for j in manager.jobs() if j.id == job.id]
    assert info.status == "interrupted" and info.resumable, info
    assert "resume continues from step-" in info.message
    manager.resume(job.id)
    status = manager.wait(job.id, timeout=180)
    assert status["status"] == "finished", job.log_tail()
    starts = [e["step"] for e in job.events()[0] if e["type"] == "start"]
    assert starts[0] == 0 and 4 <= starts[-1] <= kill_at, (starts, kill_at)
    ref, got = adapter_weights(reference.adapter), adapter_weights(status["adapter"])
    assert ref.keys() == got.keys() and ref
    for key in ref:
        assert torch.allclose(ref[key], got[key], atol=1e-6), key


def _job_dir(app: subprocess.Popen) -> Path | None:
    from playground.training.job_files import jobs_root

    assert app.poll() is None, "the app process died"
    jobs = [p for p in jobs_root().iterdir() if (p / "events.jsonl").is_file()]
    return jobs[0] if jobs else None


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _run_with(job_dir: Path, monkeypatch, target: str, replacement) -> dict:
    from playground.training.worker import run_job

    with monkeypatch.context() as mp:
        mp.setattr(target, replacement)
        return run_job(job_dir)


def _oom_at_step(step: int):
    from playground.training import trainer

    real = trainer.token_loss_sum
    calls = {"n": 0}

    def token_loss_sum(model, batch):
        calls["n"] += 1
        if calls["n"] > step:  # packed: a step's six short examples make one pass
            _oom()
        return real(model, batch)

    return token_loss_sum


def test_out_of_memory_in_training_leaves_a_resumable_job(tmp_path, tiny_llama, train_data, monkeypatch):
    from playground.training import TrainingJob
    from playground.training.worker import run_job

    job = TrainingJob.create(train_config(tiny_llama, train_data, "oom"))
    status = _run_with(job.dir, monkeypatch, "playground.training.trainer.token_loss_sum", _oom_at_step(6))
    assert status["status"] == "failed" and "out of memory" in status["message"].lower()
    assert status.get("checkpoint_step") == 4
    job.stop_file.unlink(missing_ok=True)
    resumed = run_job(job.dir)
    assert resumed["status"] == "finished" and Path(resumed["adapter"]).is_dir()


def test_out_of_memory_in_training_says_what_to_change(tmp_path, tiny_llama, train_data, monkeypatch):
    from playground.training import TrainingJob

    job = TrainingJob.create(train_config(tiny_llama, train_data, "oom-advice"))
    status = _run_with(job.dir, monkeypatch, "playground.training.trainer.token_loss_sum", _oom_at_step(1))
    message = status["message"]
    assert "Internal error" not in message and "micro_batch" in message and "max_length" in message


def test_a_failing_torch_compile_says_to_untick_it(tmp_path, tiny_llama, train_data, monkeypatch):
    import torch._dynamo.exc

    from playground.training import TrainingJob

    def no_compiler(model, batch):
        raise torch._dynamo.exc.TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found")

    job = TrainingJob.create(train_config(tiny_llama, train_data, "compile-fails"))
    status = _run_with(job.dir, monkeypatch, "playground.training.trainer.token_loss_sum", no_compiler)
    assert status["status"] == "failed"
    assert "Internal error" not in status["message"] and "Untick torch.compile" in status["message"]
    assert "No working C++ compiler" in status["message"]


def _full_disk_save(seen: dict):
    """PeftModel.save_pretrained that, for an adapter (not a checkpoint), writes half the weights
    and then finds the disk full."""
    from peft import PeftModel

    from playground.models.adapters import list_adapter_names
    from playground.paths import adapters_dir
    from playground.training import list_adapters

    real = PeftModel.save_pretrained

    def save_pretrained(self, folder, **kwargs):
        if Path(folder).parent != adapters_dir():
            return real(self, folder, **kwargs)
        Path(folder, "adapter_model.safetensors").write_bytes(b"\0" * 1000)
        Path(folder, "adapter_config.json").write_text("{}")
        seen["app list"] = list_adapter_names()
        seen["training list"] = [a.name for a in list_adapters()]
        raise OSError(errno.ENOSPC, "No space left on device")

    return save_pretrained


def _full_disk_run(tmp_path, tiny_llama, train_data, monkeypatch, output: str):
    from playground.paths import adapters_dir
    from playground.training import TrainingJob

    previous = adapters_dir() / "poems"
    previous.mkdir()
    (previous / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (previous / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    before = folder_digest(previous)
    job = TrainingJob.create(train_config(tiny_llama, train_data, output, max_steps=6, save_every=4))
    seen: dict = {}
    status = _run_with(job.dir, monkeypatch, "peft.PeftModel.save_pretrained", _full_disk_save(seen))
    return job, status, seen, previous, before


def test_full_disk_while_saving_an_adapter_leaves_the_previous_one_untouched(
    tmp_path, tiny_llama, train_data, monkeypatch
):
    from playground.paths import adapters_dir
    from playground.training.worker import run_job

    job, status, seen, previous, before = _full_disk_run(
        tmp_path, tiny_llama, train_data, monkeypatch, "poems"
    )
    assert status["status"] == "failed" and "No space left on device" in status["message"]
    # While half written, the new adapter was in neither list; afterwards nothing of it is left.
    assert seen == {"app list": ["poems"], "training list": ["poems"]}
    assert folder_digest(previous) == before
    assert sorted(p.name for p in adapters_dir().iterdir()) == ["poems"]
    resumed = run_job(job.dir)  # space freed: resume saves it under a new name
    assert resumed["status"] == "finished" and Path(resumed["adapter"]).name == "poems-2"
    assert folder_digest(previous) == before


def test_full_disk_while_saving_an_adapter_says_so(tmp_path, tiny_llama, train_data, monkeypatch):
    _, status, *_ = _full_disk_run(tmp_path, tiny_llama, train_data, monkeypatch, "poems-new")
    message = status["message"]
    assert (
        "Internal error" not in message and "disk is full" in message.lower() and "resume" in message.lower()
    )
