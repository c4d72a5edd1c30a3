"""The training settings form, made from TrainingConfig's documented fields (config.form_fields()).

A field's type picks its widget; its group, its row. Labels and info texts come from the
catalogue under `training.field.<name>.label` / `.info` (English there is the field's own
documentation), so a new setting with a `group` shows up here without an edit to this file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from playground.training.config import form_fields
from playground.ui.i18n import t

# Ids that tests and styles already use; the rest are train-<name>.
_ELEM_IDS = {"loss_mode": "train-loss-on", "activation_memory_gb": "train-activation-memory"}
# Choices with words of their own (the others are technical names, shown as they are).
_CHOICE_WORDS = ("loss_mode",)


def _elem_id(name: str) -> str:
    return _ELEM_IDS.get(name, "train-" + name.replace("_", "-"))


def to_form(field: dataclasses.Field, value: Any) -> Any:
    """A setting as its widget shows it: a checkbox for an auto/off switch, text for auto numbers."""
    if field.type == "bool | None":
        return value is not False  # checked means auto
    if field.type == "float | None":
        return "" if value is None else str(value)  # empty means auto
    return value


def from_form(field: dataclasses.Field, value: Any) -> Any:
    """A widget's value as the setting it stands for (TrainingConfig.from_dict checks the rest)."""
    if field.type == "bool | None":
        return None if value else False
    if field.type == "bool":
        return bool(value)
    if field.type == "int":
        return int(value or 0)  # a cleared number box means 0 ("all", "off", "from epochs")
    return value


def form_settings(values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """The form's values, in the order of form_fields(), as training settings."""
    return {f.name: from_form(f, v) for f, v in zip(form_fields(), values, strict=True)}


def form_updates(settings: dict[str, Any]) -> list[Any]:
    """Updates that show `settings` in the form."""
    return [gr.update(value=to_form(f, settings[f.name])) for f in form_fields()]


def _choices(field: dataclasses.Field, gpu: bool) -> list[Any]:
    choices = [c for c in field.metadata["choices"] if gpu or c != "qlora"]
    if field.name in _CHOICE_WORDS:
        return [(t(f"training.field.{field.name}.{c}"), c) for c in choices]
    return choices


def _widget(field: dataclasses.Field, value: Any, gpu: bool) -> gr.components.Component:
    words = {
        "label": t(f"training.field.{field.name}.label"),
        "info": t(f"training.field.{field.name}.info"),
        "elem_id": _elem_id(field.name),
    }
    shown = to_form(field, value)
    if field.metadata.get("choices"):
        custom = "list" in str(field.type)
        return gr.Dropdown(
            _choices(field, gpu), value=shown, allow_custom_value=custom, min_width=220, **words
        )
    if field.type in ("bool", "bool | None"):
        return gr.Checkbox(shown, **words)
    if field.type == "float | None":
        # A textbox, not a Number: a Number shows (and sends) 0 when empty, and empty means auto.
        return gr.Textbox(shown, placeholder=t("training.auto"), **words)
    return gr.Number(shown, precision=0 if field.type == "int" else None, **words)


def build_settings_form(settings: dict[str, Any], gpu: bool) -> list[gr.components.Component]:
    """The settings' widgets, one row per group, in the order of form_fields()."""
    widgets: list[gr.components.Component] = []
    groups: dict[str, list[dataclasses.Field]] = {}
    for field in form_fields():
        groups.setdefault(field.metadata["group"], []).append(field)
    for group, fields in groups.items():
        if group == "gpu_speed":
            # Only what speeds up a GPU run; on a CPU-only machine the group is not shown at all.
            box = gr.Accordion(t("training.gpu_speed"), open=False, visible=gpu, elem_id="train-gpu-speed")
        else:
            box = gr.Row()
        with box:
            widgets += [_widget(f, settings[f.name], gpu) for f in fields]
    return widgets
