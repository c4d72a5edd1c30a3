"""LoRA training of an encoder-decoder model (peft SEQ_2_SEQ_LM) on a tiny T5, with the same job machinery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.training import (
    JobManager,
    Trainer,
    TrainingJob,
    format_example,
    list_adapters,
    render_masked,
)
from playground.training.checkpoints import list_checkpoints
from playground.training.formatting import pad_batch
from playground.training.worker import run_job
from tests import test_training
from tests.test_training import ROWS, STEPS, assert_same_weights, make_config

# Fixtures are found by their name in this module: the same data file, and one thread per process.
data_file = test_training.data_file
one_thread = test_training.one_thread

PROMPT = "Say the colour 3"


@pytest.fixture(scope="module")
def t5_tokenizer(tiny_t5):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_t5)


@pytest.fixture(scope="module")
def reference(tiny_t5, data_file, tmp_path_factory):
    """One uninterrupted run with a held-out pair: the baseline for the job and the resumed run."""
    root = tmp_path_factory.mktemp("t5-reference")
    events: list[dict] = []
    config = make_config(tiny_t5, data_file, str(root / "adapters" / "reference"), eval_size=2)
    result = Trainer(config, root / "job", on_event=events.append).run()
    return result, events, config


# -- formatting ----------------------------------------------------------------------------------


def test_encoder_gets_the_prompt_and_labels_are_only_output_and_eos(t5_tokenizer):
    tok = t5_tokenizer
    example = Example("1", "Say the colour", " 3", "gold fox")
    output_ids = tok("gold fox", add_special_tokens=False)["input_ids"]
    for mode in ("masked_prompt", "no_template"):
        formatted = format_example(example, tok, "plain", mode, max_length=64, seq2seq=True)
        assert formatted.input_ids == tok(PROMPT)["input_ids"]  # with the tokenizer's own eos
        assert formatted.labels == output_ids + [tok.eos_token_id]
        assert formatted.n_trained == formatted.n_predicted == len(output_ids) + 1

    alpaca = format_example(example, tok, "alpaca", max_length=32, seq2seq=True)
    assert len(alpaca.input_ids) == 32 and alpaca.input_ids[-1] == tok.eos_token_id  # cut, eos kept
    assert "### Instruction:" in tok.decode(alpaca.input_ids) and alpaca.labels == formatted.labels
    short = format_example(example, tok, "plain", max_length=4, seq2seq=True)
    assert short.labels == output_ids[:4]

    pieces = render_masked(formatted, tok)
    assert pieces == [(PROMPT + tok.eos_token, False), ("gold fox" + tok.eos_token, True)]

    with pytest.raises(PlaygroundError, match="full_text.*encoder-decoder"):
        format_example(example, tok, "plain", "full_text", seq2seq=True)


def test_padding_and_loss_match_the_models_own_loss(tiny_t5, t5_tokenizer):
    from transformers import AutoModelForSeq2SeqLM

    from playground.training.loss import count_trained, token_loss_sum

    tok = t5_tokenizer
    rows = [
        Example(str(i), r["instruction"] * (i + 1), r["input"], r["output"] * (3 - i))
        for i, r in enumerate(ROWS[:3])
    ]
    formatted = [format_example(e, tok, "plain", max_length=256, seq2seq=True) for e in rows]
    batch = pad_batch(formatted, tok.pad_token_id)
    assert batch["input_ids"].shape == (3, max(len(f.input_ids) for f in formatted))
    assert batch["labels"].shape == (3, max(len(f.labels) for f in formatted))
    for row, f in enumerate(formatted):
        assert int(batch["attention_mask"][row].sum()) == len(f.input_ids)
        assert batch["labels"][row, len(f.labels) :].eq(-100).all()
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    with torch.no_grad():
        total, n = token_loss_sum(model, batch)
        expected = model(**batch).loss  # T5's mean over labels != -100
    assert n == count_trained(batch, seq2seq=True) == sum(f.n_trained for f in formatted)
    assert torch.allclose(total / n, expected, atol=1e-5)


def test_target_module_aliases_use_t5_names(tiny_t5):
    from playground.training.modeling import fit_target_modules, resolve_target_modules

    available = {"q", "k", "v", "o", "wi", "wo", "lm_head"}

    def fit(spec):
        return fit_target_modules(resolve_target_modules(spec), available)

    assert fit("q,v") == ["q", "v"]
    assert fit("attention") == ["q", "k", "v", "o"]
    assert fit("mlp") == ["wi", "wo"]
    assert fit("wi") == ["wi"] and fit("all-linear") == "all-linear"
    assert fit("q_proj,v_proj") == ["q", "v"]


# -- submit-time checks --------------------------------------------------------------------------


def test_full_text_and_unknown_modules_are_refused_before_a_job_exists(tiny_t5, data_file):
    manager = JobManager()
    good = make_config(tiny_t5, data_file, "never")
    with pytest.raises(PlaygroundError, match="full_text does not apply.*encoder-decoder"):
        manager.submit(good.replace(loss_mode="full_text"))
    with pytest.raises(PlaygroundError, match="unknown target module.*qkv_proj.*wi, wo"):
        manager.submit(good.replace(target_modules="qkv_proj"))
    assert manager.jobs() == [] and manager.running() is None


# -- training ------------------------------------------------------------------------------------


def test_loss_goes_down_and_eval_uses_the_seq2seq_perplexity(reference, tiny_t5):
    from playground.evaluation.perplexity import perplexity
    from playground.models import LoadOptions, load_model
    from playground.models.adapters import attach_adapter
    from playground.training.dataset import prepare_data

    result, events, config = reference
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert result.status == "finished" and len(losses) == STEPS
    # tiny_t5's small random norm weights and tied, rescaled embeddings cap its logits near +-0.7, so
    # the loss starts at ln(vocabulary) and cannot fall far below it: ask for a clear drop, not a collapse.
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2
    start = next(e for e in events if e["type"] == "start")
    assert start["n_train"] == len(ROWS) - 2 and start["n_eval"] == 2

    folder = Path(result.adapter)
    peft_config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert peft_config["task_type"] == "SEQ_2_SEQ_LM"
    assert set(peft_config["target_modules"]) == {"q", "k", "v", "o", "wi", "wo"}  # all-linear, no lm_head
    meta = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    assert meta["base_model"] == str(tiny_t5) and len(meta["loss_history"]) == STEPS
    assert [a.name for a in list_adapters(folder.parent)] == ["reference"]

    # The eval perplexity is the evaluation service's seq2seq number for the trained adapter.
    loaded = load_model(str(tiny_t5), LoadOptions(precision="fp32"))  # as training loads it on CPU
    attach_adapter(loaded, folder)
    held_out = prepare_data(config).eval
    pairs = [(e.instruction + e.input, e.output) for e in held_out]
    expected = perplexity(loaded.model, loaded.tokenizer, pairs).mean_perplexity
    assert result.metrics["eval_perplexity"] == pytest.approx(expected, rel=1e-4)


def test_stop_and_resume_match_the_uninterrupted_run(reference, tiny_t5, data_file, tmp_path):
    config = make_config(tiny_t5, data_file, str(tmp_path / "stopped"), eval_size=2, save_every=4)
    job = TrainingJob.create(config)

    def stop_at_7(event):
        if event["type"] == "step" and event["step"] == 7:
            job.stop_file.touch()

    assert run_job(job.dir, stop_at_7)["status"] == "stopped"
    assert [p.name for p in list_checkpoints(job.dir)] == ["step-4", "step-7"]
    job.stop_file.unlink()
    status = run_job(job.dir)
    assert status["status"] == "finished"
    assert_same_weights(status["adapter"], reference[0].adapter)


def test_job_in_a_subprocess_gives_an_adapter_that_changes_generation(reference, tiny_t5, data_file):
    from playground.generation.batch import generate_batch
    from playground.generation.settings import DecodingSettings
    from playground.models import load_model
    from playground.models.adapters import attach_adapter

    manager = JobManager(poll_s=0.05)
    job_id = manager.submit(make_config(tiny_t5, data_file, "t5-job", eval_size=2))
    status = manager.wait(job_id, timeout=60)
    assert status["status"] == "finished", manager.job(job_id).log_tail()
    assert_same_weights(status["adapter"], reference[0].adapter)
    assert [a.name for a in list_adapters()] == ["t5-job"]

    loaded = load_model(str(tiny_t5))
    name = attach_adapter(loaded, status["adapter"])
    prompts = [r["instruction"] + r["input"] for r in ROWS[:4]]
    greedy = DecodingSettings(do_sample=False, max_new_tokens=12)
    # Generation names its adapter (None: the base model) instead of switching the model's state.
    base = [row[0].text for row in generate_batch(loaded, prompts, greedy)]
    tuned = [row[0].text for row in generate_batch(loaded, prompts, greedy, adapter=name)]
    assert tuned != base
    # Trained on these pairs: the adapter answers with (pieces of) the trained outputs, the base does not.

    def learned(texts: list[str]) -> int:
        return sum(bool(t.strip()) and t.strip() in r["output"] for t, r in zip(texts, ROWS))

    assert learned(tuned) > learned(base)
