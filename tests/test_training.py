"""The adapter-training service on a tiny random Llama: formatting, loop, checkpoints, jobs, CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from playground.data_types import Example
from playground.errors import DatasetError, PlaygroundError
from playground.paths import exports_dir, merged_dir
from playground.training import (
    JobManager,
    Trainer,
    TrainingConfig,
    TrainingJob,
    format_example,
    list_adapters,
    merge_adapter,
    render_masked,
)
from playground.training.checkpoints import list_checkpoints
from playground.training.worker import run_job
from tests.helpers import wait_for
from tests.tiny_models import build_tokenizer

COLOURS = ["red", "blue", "green", "gold"]
ROWS = [
    {"instruction": "Say the colour", "input": f" {i}", "output": f"{COLOURS[i % 4]} fox"} for i in range(8)
]
STEPS = 30


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest (and identically in every process) on one thread."""
    before = torch.get_num_threads()
    old_env = os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(before)
    if old_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old_env


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "colours.json"
    path.write_text(json.dumps(ROWS), encoding="utf-8")
    return path


def make_config(model: Path, data: Path, output: str, **changes) -> TrainingConfig:
    settings = dict(
        model=str(model),
        data=str(data),
        max_steps=STEPS,
        micro_batch=3,  # 8 examples: uneven micro-batches and epoch boundaries inside steps
        grad_accum=2,
        lr=2e-2,
        r=16,
        alpha=32,
        dropout=0.1,  # dropout draws from the torch RNG, so resume must restore it
        target_modules="all-linear",
        warmup_steps=2,
        save_every=10,
        output=output,
    )
    settings.update(changes)
    return TrainingConfig(**settings)


@pytest.fixture(scope="module")
def reference(tiny_llama, data_file, tmp_path_factory):
    """One uninterrupted run: the baseline every resumed run must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    events: list[dict] = []
    config = make_config(tiny_llama, data_file, str(root / "adapters" / "reference"))
    result = Trainer(config, root / "job", on_event=events.append).run()
    return result, events


def adapter_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(Path(folder) / "adapter_model.safetensors")


def assert_same_weights(a: str | Path, b: str | Path) -> None:
    wa, wb = adapter_weights(a), adapter_weights(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        assert torch.allclose(wa[key], wb[key], atol=1e-6), key


# -- formatting ---------------------------------------------------------------------------------


def test_prompt_tokens_are_masked_and_full_text_is_not():
    tok = build_tokenizer()
    example = Example("1", "Say the colour", " 3", "gold fox")
    masked = format_example(example, tok, "alpaca", "masked_prompt", max_length=256)
    assert masked.input_ids[0] == tok.bos_token_id and masked.input_ids[-1] == tok.eos_token_id
    assert masked.labels[: masked.prompt_len] == [-100] * masked.prompt_len
    assert masked.labels[masked.prompt_len :] == masked.input_ids[masked.prompt_len :]
    trained = tok.decode(masked.input_ids[masked.prompt_len :], skip_special_tokens=True)
    assert trained == "gold fox"
    assert "### Instruction:" in tok.decode(masked.input_ids[: masked.prompt_len])

    full = format_example(example, tok, "alpaca", "full_text", max_length=256)
    assert full.input_ids == masked.input_ids and -100 not in full.labels

    bare = format_example(example, tok, "alpaca", "no_template", max_length=256)
    assert tok.decode(bare.input_ids[1 : bare.prompt_len]) == "Say the colour 3"
    assert bare.labels[bare.prompt_len :] == bare.input_ids[bare.prompt_len :]

    cut = format_example(example, tok, "alpaca", "masked_prompt", max_length=masked.prompt_len + 1)
    assert len(cut.input_ids) == masked.prompt_len + 1 and cut.n_trained == 1


def test_render_masked_shows_whole_characters_and_what_is_trained():
    tok = build_tokenizer()
    example = Example("1", "以下是一首唐詩的第一句話", "床前明月光，", "疑是地上霜。")
    formatted = format_example(example, tok, "chat", max_length=256)
    pieces = render_masked(formatted, tok)
    assert "".join(text for text, _ in pieces) == tok.decode(formatted.input_ids)
    assert not any("\ufffd" in text for text, _ in pieces)
    trained = "".join(text for text, is_trained in pieces if is_trained)
    assert trained == "疑是地上霜。" + tok.eos_token
    assert not pieces[0][1]


# -- settings and submit-time validation -------------------------------------------------------


def test_config_from_yaml_coerces_and_rejects_unknown(tmp_path, data_file):
    path = tmp_path / "run.yaml"
    path.write_text(
        f"data: {data_file}\nlr: 2e-4\nr: 4\ntarget_modules: [q_proj, v_proj]\n", encoding="utf-8"
    )
    config = TrainingConfig.from_yaml(path)
    assert config.lr == 2e-4 and config.r == 4 and config.target_modules == ["q_proj", "v_proj"]
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(PlaygroundError, match="Unknown training setting.*learning_rate"):
        TrainingConfig.from_dict({"learning_rate": 1})
    with pytest.raises(PlaygroundError, match="r: 'four'"):
        TrainingConfig.from_dict({"r": "four"})


def test_submit_rejects_bad_settings_and_data_before_any_job(tmp_path, tiny_llama, data_file):
    manager = JobManager()
    good = make_config(tiny_llama, data_file, "never")

    with pytest.raises(PlaygroundError, match="No data file .*missing.json"):
        manager.submit(good.replace(data=str(tmp_path / "missing.json")))

    bad_rows = tmp_path / "bad.json"
    bad_rows.write_text(json.dumps(ROWS[:3] + [{"instruction": "no answer here"}]), encoding="utf-8")
    with pytest.raises(DatasetError, match="row 4") as info:
        manager.submit(good.replace(data=str(bad_rows)))
    assert info.value.row == 4

    with pytest.raises(PlaygroundError) as info:
        manager.submit(good.replace(lr=-1.0, micro_batch=0))
    assert "lr must be" in str(info.value) and "micro_batch must be" in str(info.value)

    with pytest.raises(PlaygroundError, match="unknown target module 'x'"):
        manager.submit(good.replace(target_modules="q,x"))
    with pytest.raises(PlaygroundError, match="unknown target module.*qkv_proj.*q_proj"):
        manager.submit(good.replace(target_modules="qkv_proj"))

    with pytest.raises(PlaygroundError, match="leaves nothing to train on"):
        manager.submit(good.replace(eval_size=8))

    assert manager.jobs() == [] and manager.running() is None


# -- the training loop -------------------------------------------------------------------------


def test_loss_goes_down_on_a_memorizable_set(reference):
    result, events = reference
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert result.status == "finished" and len(losses) == STEPS
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    step = next(e for e in events if e["type"] == "step")
    assert {"epoch", "lr", "grad_norm", "tokens_per_s", "eta_s", "elapsed_s"} <= step.keys()
    assert step["lr"] < 2e-2  # still warming up


def test_eta_comes_from_the_steps_after_the_first(reference):
    from playground.training.trainer import eta_seconds

    _, events = reference
    steps = [e for e in events if e["type"] == "step"]
    assert steps[0]["eta_s"] is None  # the first step also pays for warm-up: no guess from it
    assert all(e["eta_s"] is not None for e in steps[1:])
    assert steps[-1]["eta_s"] == 0.0
    assert eta_seconds(10, 4.0, 2) == 20.0 and eta_seconds(10, 0.0, 0) is None and eta_seconds(0, 1, 0) == 0


def test_adapter_is_standard_peft_with_metadata(reference, tiny_llama, data_file):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _ = reference
    folder = Path(result.adapter)
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    meta = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    assert meta["base_model"] == str(tiny_llama)
    assert meta["dataset"]["sha256"] and meta["dataset"]["n_train"] == len(ROWS)
    assert len(meta["loss_history"]) == STEPS and meta["settings"]["r"] == 16
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(folder))
    lora = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert lora


def test_list_adapters_skips_half_written_and_foreign_folders(reference, tmp_path):
    import shutil

    folder = Path(reference[0].adapter)
    root = tmp_path / "adapters"
    shutil.copytree(folder, root / "done")
    shutil.copytree(folder, root / ".tmp-half.1234")
    (root / "not-an-adapter").mkdir()
    found = list_adapters(root)
    assert [a.name for a in found] == ["done"]
    assert found[0].metrics["steps"] == STEPS and len(found[0].loss_history) == STEPS


def test_merge_adapter_gives_the_same_outputs(reference, tmp_path, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = merge_adapter(reference[0].adapter, tmp_path / "merged")
    ids = torch.tensor([[1, 5, 9, 20, 33]])
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), reference[0].adapter)
    plain = AutoModelForCausalLM.from_pretrained(merged)
    with torch.no_grad():
        assert torch.allclose(peft.eval()(ids).logits, plain.eval()(ids).logits, atol=1e-4)


def test_continue_from_an_adapter_starts_from_its_weights(reference, tiny_llama, data_file, tmp_path):
    events: list[dict] = []
    config = make_config(
        tiny_llama, data_file, str(tmp_path / "more"), max_steps=2, resume_from=reference[0].adapter
    )
    result = Trainer(config, tmp_path / "job", on_event=events.append).run()
    first = next(e for e in events if e["type"] == "step")
    ref_first = next(e for e in reference[1] if e["type"] == "step")
    assert result.status == "finished" and first["step"] == 1  # a new run, not a resumed one
    assert first["loss"] < 0.8 * ref_first["loss"]


def test_stop_keeps_checkpoints_and_resume_matches_uninterrupted(reference, tiny_llama, data_file, tmp_path):
    job = TrainingJob.create(make_config(tiny_llama, data_file, str(tmp_path / "stopped"), save_every=2))

    def stop_at_7(event):
        if event["type"] == "step" and event["step"] == 7:
            job.stop_file.touch()

    status = run_job(job.dir, stop_at_7)
    assert status["status"] == "stopped" and "step 7" in status["message"]
    assert [p.name for p in list_checkpoints(job.dir)] == ["step-6", "step-7"]
    assert status["adapter"] == str(tmp_path / "stopped")  # the adapter so far, usable at once

    job.stop_file.unlink()  # as JobManager.resume and `train --resume` do
    status = run_job(job.dir)
    assert status["status"] == "finished"
    assert status["adapter"] == str(tmp_path / "stopped")  # finished in place
    assert_same_weights(status["adapter"], reference[0].adapter)
    events, _ = job.events()
    assert [e["step"] for e in events if e["type"] == "start"] == [0, 7]


def test_sigterm_checkpoints_and_stops(tiny_llama, data_file, tmp_path):
    job = TrainingJob.create(make_config(tiny_llama, data_file, str(tmp_path / "termed"), save_every=0))

    def terminate_at_3(event):
        if event["type"] == "step" and event["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    status = run_job(job.dir, terminate_at_3)
    assert status["status"] == "stopped"
    assert [p.name for p in list_checkpoints(job.dir)] == ["step-3"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_loss_matches_the_models_own_loss(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from playground.training.formatting import pad_batch
    from playground.training.loss import token_loss_sum

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    rows = [
        Example(str(i), r["instruction"] * (i + 1), r["input"], r["output"]) for i, r in enumerate(ROWS[:3])
    ]
    batch = pad_batch([format_example(e, tok, "alpaca", max_length=256) for e in rows], tok.pad_token_id)
    with torch.no_grad():
        total, n = token_loss_sum(model, batch)
        expected = model(**batch).loss
    assert n == int((batch["labels"][:, 1:] != -100).sum())
    assert torch.allclose(total / n, expected, atol=1e-5)


# -- jobs in subprocesses ------------------------------------------------------------------------


def test_killed_job_resumes_to_the_same_weights_and_jobs_queue(reference, tiny_llama, data_file, tmp_path):
    manager = JobManager(poll_s=0.05, worker_module="tests._training_slow_worker")
    first = manager.submit(make_config(tiny_llama, data_file, "killed", save_every=5))
    doomed_data = tmp_path / "gone.json"
    doomed_data.write_text(json.dumps(ROWS), encoding="utf-8")
    second = manager.submit(make_config(tiny_llama, doomed_data, "second"))
    assert manager.job(second).status()["status"] == "queued"
    doomed_data.unlink()  # the second job will fail fast once it gets its turn

    offset, saved = 0, []

    def checkpoint_written():
        nonlocal offset
        events, offset = manager.events(first, offset)
        saved.extend(e for e in events if e["type"] == "checkpoint")
        return saved

    wait_for(checkpoint_written, timeout=120)
    pid = manager.job(first).status()["pid"]
    assert manager.job(second).status()["status"] == "queued"  # one job at a time
    os.kill(pid, signal.SIGKILL)

    assert manager.wait(first, timeout=30)["status"] == "interrupted"
    second_status = manager.wait(second, timeout=60)
    assert second_status["status"] == "failed" and "gone.json" in second_status["message"]
    assert list_checkpoints(manager.job(first).dir)

    manager.resume(first)
    status = manager.wait(first, timeout=90)
    assert status["status"] == "finished", manager.job(first).log_tail()
    assert_same_weights(status["adapter"], reference[0].adapter)
    assert [j.id for j in manager.jobs()] == [second, first]


def test_manager_marks_a_dead_running_job_interrupted(tiny_llama, data_file):
    job = TrainingJob.create(make_config(tiny_llama, data_file, "dead"), status="running")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job.update_status(pid=gone.pid)
    manager = JobManager()
    info = next(j for j in manager.jobs() if j.id == job.id)
    assert info.status == "interrupted" and info.resumable
    assert "no checkpoint yet" in info.message
    assert manager.running() is None
    with pytest.raises(PlaygroundError, match="micro_batch must be"):
        manager.resume(job.id, {"micro_batch": 0})
    assert job.config.micro_batch == 3 and job.status()["status"] == "interrupted"


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_json_summary_is_the_last_line(tiny_llama, data_file, tmp_path, capsys):
    from playground.training.cli import add_arguments, main

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tiny_llama}\ndata: {data_file}\nmax_steps: 50\nr: 4\n", encoding="utf-8")
    args = parser.parse_args(
        [
            "--config",
            str(config),
            "--max-steps",
            "3",
            "--eval-size",
            "2",
            "--output",
            "adapters/cli",
            "--json",
        ]
    )
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["steps"] == 3
    assert summary["final_loss"] > 0 and summary["eval_perplexity"] > 1
    assert Path(summary["adapter"]).name == "cli" and (Path(summary["adapter"]) / "playground.json").is_file()

    assert main(parser.parse_args(["--config", str(config), "--lr", "-1", "--json"])) == 2
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert error["status"] == "error" and "lr must be" in error["message"]


def test_stop_saves_the_adapter_so_far_and_resume_finishes_it_in_place(tiny_llama, data_file, tmp_path):
    from playground.training import TrainingJob, list_adapters, read_adapter
    from playground.training.worker import run_job

    config = make_config(tiny_llama, data_file, "adapters/stopped-demo", save_every=0)
    job = TrainingJob.create(config)
    job.stop_file.touch()  # asked to stop before the first step: nothing worth saving yet
    assert run_job(job.dir)["status"] == "stopped" and not list_adapters()
    job.stop_file.unlink()

    stop_at = 3

    def on_event(event):
        if event["type"] == "step" and event["step"] == stop_at:
            job.stop_file.touch()

    status = run_job(job.dir, listener=on_event)
    assert status["status"] == "stopped" and status["adapter"]
    [stopped] = list_adapters()
    assert stopped.name == "stopped-demo" and read_adapter(stopped.path).metrics["steps"] == stop_at

    job.stop_file.unlink()
    finished = run_job(job.dir)
    assert finished["status"] == "finished"
    [final] = list_adapters()  # replaced in place, not "stopped-demo-2"
    assert final.name == "stopped-demo" and final.metrics["steps"] > stop_at


def test_an_adapter_exports_as_a_zip_that_peft_loads(reference, tmp_path):
    import zipfile

    from peft import PeftConfig

    from playground.training.export import adapter_zip

    archive = adapter_zip(reference[0].adapter)
    name = Path(reference[0].adapter).name
    assert archive.parent.parent == exports_dir() and archive.name == f"{name}-adapter.zip"
    # Served to whoever names its path: the folder's name is 128 random bits, fresh each time.
    again = adapter_zip(reference[0].adapter)
    assert re.fullmatch(r"[0-9a-f]{32}", archive.parent.name) and again.parent != archive.parent
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path)
    unpacked = tmp_path / name
    assert_same_weights(unpacked, reference[0].adapter)
    assert PeftConfig.from_pretrained(str(unpacked)).r == 16  # make_config's r
    card = (unpacked / "README.md").read_text(encoding="utf-8")
    assert "base_model:" in card and "library_name: peft" in card and "AutoPeftModelForCausalLM" in card


def test_a_merged_export_has_the_adapters_outputs_a_card_and_the_tokenizer(reference, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from playground.errors import PlaygroundError
    from playground.training.export import merged_model

    out = merged_model(reference[0].adapter)
    assert out.parent == merged_dir() and exports_dir() not in out.parents  # never served as it is
    assert "library_name: transformers" in (out / "README.md").read_text(encoding="utf-8")
    assert AutoTokenizer.from_pretrained(out) is not None
    ids = torch.tensor([[1, 5, 9, 20, 33]])
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), reference[0].adapter)
    with torch.no_grad():
        want = peft.eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    with pytest.raises(PlaygroundError, match="already exists"):
        merged_model(reference[0].adapter)  # never written over


def test_pushing_to_the_hub_says_clearly_what_is_missing(reference):
    from playground.errors import PlaygroundError
    from playground.training.export import push_to_hub

    with pytest.raises(PlaygroundError, match="user/name"):
        push_to_hub(reference[0].adapter, "no-slash", "hf_x")
    with pytest.raises(PlaygroundError, match="token"):
        push_to_hub(reference[0].adapter, "me/tang", None)
    # A Hub that cannot be reached (a closed port on this machine): a message, not a traceback.
    with pytest.raises(PlaygroundError, match="Could not reach"):
        push_to_hub(reference[0].adapter, "me/tang", "hf_x", endpoint="http://127.0.0.1:9")


def test_export_on_the_command_line(reference, capsys):
    from playground.__main__ import main

    assert main(["export", str(reference[0].adapter), "--zip"]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()
    assert main(["export", "no-such-adapter", "--zip"]) == 2
    assert "No adapter" in capsys.readouterr().err
