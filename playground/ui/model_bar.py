"""The model picker at the top of the page: the bar's model, shared by every tab, and what else is in memory.

Which adapter chat uses is each session's own choice; which model is resident is an admin's.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.context import AppContext
from playground.messages import Message
from playground.models import EMBEDDED_KEY, PRESETS, LoadOptions
from playground.models.adapter_access import usable_adapter_folder, usable_adapters
from playground.models.adapters import attach_adapter
from playground.models.loader import PRECISIONS
from playground.models.sources import check_model_source, trust_remote_code_allowed
from playground.models.weightless import is_weightless
from playground.ui.common import progress_callback, user_errors
from playground.ui.i18n import language_of, t, tr
from playground.ui.session import on_page_load, owner_of

NO_ADAPTER = "(none)"
# Precisions whose name alone does not say enough; the others are shown as they are.
PRECISION_KEYS = {"4bit": "model_bar.precision.4bit", "int4": "model_bar.precision.int4"}


def model_status(ctx: AppContext, request: gr.Request | None = None) -> str:
    cur = ctx.models.current
    if cur is None:
        return tr(request, "model_bar.no_model")
    key = "model_bar.model_summary_external" if is_weightless(cur) else "model_bar.model_summary"
    summary = tr(request, key, **cur.summary())
    lines = [tr(request, "model_bar.loaded", model=summary)]
    lang = language_of(request)
    lines += [f"- {note.in_language(lang) if isinstance(note, Message) else note}" for note in cur.notes]
    lines.append(resident_line(ctx, request))
    if ctx.models.remote is not None:
        lines.append(tr(request, "model_bar.external_engine", url=ctx.models.remote.url))
    if cur.device == "cuda":
        import torch

        used = torch.cuda.memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        lines.append(tr(request, "model_bar.gpu_memory", used=f"{used:.1f}", total=f"{total:.0f}"))
    return "\n".join(lines)


def resident_line(ctx: AppContext, request: gr.Request | None = None) -> str:
    """What the bar's model takes in memory, then the other resident models (Side by side's and the
    arena's) with theirs: the bar's model is named once, in the line above."""
    resident = ctx.models.resident()
    mine = [i for i in resident if i.current]
    others = [
        tr(request, "model_bar.resident.model", name=i.key, memory=i.memory, device=i.device)
        for i in resident
        if not i.current
    ]
    lines = [tr(request, "model_bar.resident.alone", memory=i.memory, device=i.device) for i in mine]
    if others:
        lines.append(tr(request, "model_bar.resident", models=", ".join(others)))
    return "\n".join(lines)


@dataclass
class ModelBar:
    status: gr.Markdown
    # The adapter this browser session chats with (None = the base model): a per-session choice.
    chat_adapter: gr.State


@dataclass
class LoadControls:
    row: gr.Row
    model: gr.Dropdown
    precision: gr.Radio
    load: gr.Button


def adapter_choices(ctx: AppContext, request: gr.Request | None = None) -> dict:
    """The adapters this person may chat with on the bar's model: theirs, trained on its base."""
    loaded = ctx.models.current
    usable = usable_adapters(owner_of(ctx, request), loaded.name, loaded.source) if loaded is not None else []
    return gr.update(choices=[(t("model_bar.adapter.none"), NO_ADAPTER), *usable])


class ModelBarHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def adapter_choices(self, request: gr.Request) -> dict:
        return adapter_choices(self.ctx, request)

    def on_page(self, request: gr.Request):
        is_admin = owner_of(self.ctx, request).is_admin
        return (
            model_status(self.ctx, request),
            gr.update(visible=is_admin),
            adapter_choices(self.ctx, request),
        )

    @user_errors
    def on_adapter(self, name: str | None, request: gr.Request | None = None) -> tuple[str, str | None]:
        if not name or name == NO_ADAPTER:
            return model_status(self.ctx, request), None
        with self.ctx.models.use() as loaded:
            folder = usable_adapter_folder(owner_of(self.ctx, request), name, loaded, check_base=False)
            attached = attach_adapter(loaded, folder)
        return model_status(self.ctx, request) + "\n" + tr(
            request, "model_bar.chat_adapter", name=name
        ), attached

    @user_errors
    def on_load(
        self, name: str, precision: str, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple[str, None, dict]:
        owner_of(self.ctx, request).require_admin("Loading a model")
        source = check_model_source(name, shared=self.ctx.deployment.shared)
        options = LoadOptions(precision=precision, trust_remote_code=trust_remote_code_allowed())
        self.ctx.models.load(source, options, progress_callback(progress))
        return model_status(self.ctx, request), None, gr.update(value=NO_ADAPTER)


def build_load_controls(ctx: AppContext) -> LoadControls:
    # Loading a model changes it for everyone: on a shared playground only admins see these controls
    # (filled in on page load, when the user is known), and the handler checks again.
    with gr.Row(equal_height=True, visible=False) as row:
        model = gr.Dropdown(
            [(f"{p.key} ({p.size}, {p.hf_id})", p.key) for p in PRESETS.values()],
            value=ctx.models.current.name if ctx.models.current else EMBEDDED_KEY,
            allow_custom_value=True,
            label=t("model_bar.model"),
            scale=4,
            elem_id="model-name",
        )
        precision = gr.Radio(
            [(t(PRECISION_KEYS[p]) if p in PRECISION_KEYS else p, p) for p in PRECISIONS],
            value="auto",
            label=t("model_bar.precision"),
            info=t("model_bar.precision.info"),
            scale=3,
        )
        load = gr.Button(t("model_bar.load"), variant="primary", scale=1, elem_id="model-load")
    return LoadControls(row, model, precision, load)


def build_model_bar(ctx: AppContext) -> ModelBar:
    controls = build_load_controls(ctx)
    with gr.Row(equal_height=True):
        adapter = gr.Dropdown(
            [(t("model_bar.adapter.none"), NO_ADAPTER)],
            value=NO_ADAPTER,
            label=t("model_bar.adapter"),
            scale=4,
            elem_id="chat-adapter",
        )
        refresh = gr.Button(t("model_bar.refresh"), scale=1)
    status = gr.Markdown(elem_id="model-status")
    chat_adapter = gr.State(None)
    fns = ModelBarHandlers(ctx)
    on_page_load(fns.on_page, None, [status, controls.row, adapter])
    model_event = {"concurrency_id": "model", "concurrency_limit": 1}
    adapter.change(fns.on_adapter, adapter, [status, chat_adapter], **model_event)
    refresh.click(fns.adapter_choices, None, adapter, queue=False)
    load_outputs = [status, chat_adapter, adapter]
    controls.load.click(fns.on_load, [controls.model, controls.precision], load_outputs, **model_event)
    return ModelBar(status, chat_adapter)
