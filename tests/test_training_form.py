"""The training form is made from TrainingConfig's documented fields; progress is read from events."""

from __future__ import annotations

import dataclasses

import pytest

from playground.errors import PlaygroundError
from playground.training.config import TrainingConfig, form_fields
from playground.training.presets import PRESETS, preset_values, presets_for
from playground.training.progress import TrainingProgress
from playground.ui.i18n import WORDS
from playground.ui.training.form import form_settings, to_form


def test_every_documented_form_field_has_words_in_both_languages():
    names = {f.name for f in form_fields()}
    assert {"lr", "packing", "activation_memory_gb"} <= names and "model" not in names
    for name in names:
        for lang in ("en", "zh-TW"):
            assert WORDS[lang][f"training.field.{name}.label"], (lang, name)
    # English is the field's own documentation, not a second copy of it.
    lr = next(f for f in dataclasses.fields(TrainingConfig) if f.name == "lr")
    assert WORDS["en"]["training.field.lr.info"] == lr.metadata["help"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_shown_in_the_form_reads_back_as_the_same_settings(name):
    settings = preset_values(name)
    shown = [to_form(f, settings[f.name]) for f in form_fields()]
    back = TrainingConfig.from_dict({"data": "d.json", **form_settings(shown)})
    for field in form_fields():
        assert getattr(back, field.name) == settings[field.name], field.name


def test_form_values_mean_auto_off_and_bad_numbers_are_refused():
    values = [to_form(f, TrainingConfig().to_dict()[f.name]) for f in form_fields()]
    index = {f.name: i for i, f in enumerate(form_fields())}
    values[index["packing"]] = False
    values[index["activation_memory_gb"]] = "0"
    settings = form_settings(values)
    assert settings["packing"] is False
    assert TrainingConfig.from_dict(settings).activation_memory_gb == 0.0
    values[index["activation_memory_gb"]] = "lots"
    with pytest.raises(PlaygroundError, match="activation_memory_gb"):
        TrainingConfig.from_dict(form_settings(values))


def test_cpu_is_offered_no_qlora_preset():
    assert all(p["method"] != "qlora" for p in presets_for(gpu=False).values())
    assert set(presets_for(gpu=True)) == set(PRESETS)


def test_progress_folds_events_and_status():
    events = [
        {"type": "start", "total_steps": 4, "step": 0, "method": "lora", "device": "cpu", "packing": True},
        {"type": "step", "step": 1, "loss": 2.0, "lr": 1e-3, "eta_s": None},
        {"type": "eval", "step": 1, "eval_loss": 1.0, "eval_perplexity": 2.7},
        {"type": "step", "step": 2, "loss": 1.5, "lr": 1e-3, "eta_s": 3.0},
        {"type": "something new"},
    ]
    progress = TrainingProgress.from_events(events, {"status": "stopped", "adapter": "adapters/x"})
    assert progress.loss_curve == [(1, 2.0), (2, 1.5)] and progress.eval_curve == [(1, 2.7)]
    assert (progress.step, progress.total_steps, progress.eta_s) == (2, 4, 3.0)
    assert progress.status == "stopped" and not progress.active and progress.adapter == "adapters/x"
    assert progress.setup.packing and progress.setup.device == "cpu"
    assert TrainingProgress.from_events([], {"status": "bogus"}).status == "unknown"
