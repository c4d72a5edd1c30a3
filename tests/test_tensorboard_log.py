"""Issue 22 (6): a training job also writes TensorBoard event files that TensorBoard reads back."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from playground.training import TrainingJob
from playground.training.worker import run_job
from tests.test_training import data_file, make_config, one_thread  # noqa: F401 - fixtures


def test_a_job_writes_loss_lr_tokens_and_eval_scalars_that_tensorboard_reads(tiny_llama, data_file):  # noqa: F811
    config = make_config(
        tiny_llama, data_file, "adapters/tb", max_steps=4, save_every=0, eval_size=2, eval_every=2
    )
    job = TrainingJob.create(config)
    assert run_job(job.dir)["status"] == "finished"
    events, _ = job.events()
    steps = [e for e in events if e["type"] == "step"]
    evals = [e for e in events if e["type"] == "eval"]
    assert len(steps) == 4 and evals

    board = EventAccumulator(str(job.dir / "tensorboard"))
    board.Reload()
    assert set(board.Tags()["scalars"]) == {
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "train/tokens_per_s",
        "eval/loss",
        "eval/perplexity",
    }

    def series(tag: str) -> list[tuple[int, float]]:
        return [(s.step, s.value) for s in board.Scalars(tag)]

    # The same numbers as the job's own events (TensorBoard stores float32).
    for tag, field, source in (
        ("train/loss", "loss", steps),
        ("train/learning_rate", "lr", steps),
        ("train/tokens_per_s", "tokens_per_s", steps),
        ("eval/perplexity", "eval_perplexity", evals),
        ("eval/loss", "eval_loss", evals),
    ):
        got = series(tag)
        assert [step for step, _ in got] == [e["step"] for e in source], tag
        for (_, value), event in zip(got, source, strict=True):
            assert abs(value - event[field]) <= 1e-6 * max(1.0, abs(event[field])), tag
