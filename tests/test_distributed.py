"""Data-parallel training: two processes (gloo on CPU, as NCCL would be on GPUs) train exactly what one does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from playground.training import TrainingConfig, TrainingJob
from playground.training.distributed import Ranks, launch_command
from playground.training.worker import run_job
from tests.test_packing import colour_data

REPO = Path(__file__).resolve().parents[1]


def test_ranks_share_a_step_and_read_the_launchers_environment(monkeypatch):
    items = list(range(7))
    parts = [Ranks(rank, 3, rank).share(items) for rank in range(3)]
    assert sorted(x for part in parts for x in part) == items and [len(p) for p in parts] == [3, 2, 2]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Ranks.from_env() == Ranks(1, 2, 1) and not Ranks.from_env().main
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Ranks.from_env() == Ranks() and Ranks().main


def test_several_gpus_launch_through_accelerate_with_flags_it_knows():
    assert launch_command("py", "playground.training.worker", ["job"], 1) == [
        "py", "-m", "playground.training.worker", "job"
    ]  # fmt: skip
    command = launch_command(sys.executable, "playground.training.worker", ["job"], 2)
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[-3:] == ["-m", "playground.training.worker", "job"]
    assert command[command.index("--num_processes") + 1] == "2"
    helptext = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in (a for a in command[3:-3] if a.startswith("-")):
        assert flag in helptext, flag


def test_two_ranks_train_the_same_adapter_as_one_process(tiny_llama, tmp_path):
    data = colour_data(tmp_path, n=14)

    def config(name: str) -> TrainingConfig:
        return TrainingConfig(
            model=str(tiny_llama), data=str(data), max_steps=6, micro_batch=2, grad_accum=3, lr=1e-2, r=8,
            dropout=0.0, target_modules="q,v", eval_size=2, eval_every=3, save_every=3,
            output=str(tmp_path / name),
        )  # fmt: skip

    torch.set_num_threads(1)
    one = TrainingJob.create(config("one"), root=tmp_path / "jobs")
    assert run_job(one.dir)["status"] == "finished"

    two = TrainingJob.create(config("two"), root=tmp_path / "jobs")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "playground.training.worker", str(two.dir)],
        capture_output=True, text=True, env=env, timeout=280, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert two.status()["status"] == "finished"

    def curve(job: TrainingJob, kind: str, key: str) -> list[float]:
        return [e[key] for e in job.events()[0] if e["type"] == kind]

    assert len(curve(two, "start", "step")) == 1  # rank 1 writes nothing of its own
    assert curve(two, "step", "tokens") == curve(one, "step", "tokens")  # both ranks' tokens counted
    assert curve(two, "step", "loss") == pytest.approx(curve(one, "step", "loss"), rel=1e-5)
    assert curve(two, "eval", "eval_loss") == pytest.approx(curve(one, "eval", "eval_loss"), rel=1e-5)
    assert (two.dir / "checkpoints" / "step-3").is_dir()

    from safetensors.torch import load_file

    want = load_file(tmp_path / "one" / "adapter_model.safetensors")
    got = load_file(tmp_path / "two" / "adapter_model.safetensors")
    assert want.keys() == got.keys() and want
    for key in want:
        assert torch.allclose(got[key], want[key], atol=1e-5), key
