"""What the Training tab says about a job: its progress line and what it has saved."""

from __future__ import annotations

from types import SimpleNamespace

from playground.ui.training import progress_text, saved_text

START = {"type": "start", "total_steps": 30, "method": "lora", "device": "cpu", "packing": True}


def _step(step: int, eta: float | None) -> dict:
    return {
        "type": "step",
        "step": step,
        "loss": 1.5,
        "lr": 1e-3,
        "grad_norm": 1.0,
        "tokens_per_s": 90,
        "eta_s": eta,
    }


def test_no_eta_guess_at_the_first_step_then_seconds():
    first = progress_text([START, _step(1, None)], {"status": "running"})
    assert "ETA after the next step" in first and "ETA 0" not in first
    later = progress_text([START, _step(1, None), _step(2, 56.0)], {"status": "running"})
    assert "ETA 56 s" in later


def test_status_is_separate_paragraphs_not_one_run_on_paragraph():
    start = {**START, "notes": ["packed 4 examples per pass", "bf16 on CPU"]}
    text = progress_text([start, _step(3, 20.0)], {"status": "running", "message": "training"})
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith("**Status:** running")
    assert paragraphs[1].startswith("`") and "step 3/30" in paragraphs[1]
    assert paragraphs[2].startswith("lora on cpu")
    assert paragraphs[3] == "- packed 4 examples per pass\n- bf16 on CPU"


def test_finished_job_shows_its_final_adapter_step_not_its_last_checkpoint():
    finished = SimpleNamespace(status="finished", total_steps=30, checkpoint_step=20)
    stopped = SimpleNamespace(status="stopped", total_steps=30, checkpoint_step=20)
    fresh = SimpleNamespace(status="queued", total_steps=None, checkpoint_step=None)
    assert saved_text(finished) == "adapter, step 30"
    assert saved_text(stopped) == "checkpoint, step 20"
    assert saved_text(fresh) == ""
