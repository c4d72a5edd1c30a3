"""The model picker at the top of the page: one resident model shared by every tab.

Which adapter chat uses is each session's own choice; which model is resident is an admin's.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.context import AppContext
from playground.models import EMBEDDED_KEY, PRESETS, LoadOptions
from playground.models.adapters import attach_adapter, list_adapter_names
from playground.models.loader import PRECISIONS
from playground.models.sources import check_model_source, trust_remote_code_allowed
from playground.names import named_path
from playground.paths import adapters_dir
from playground.ui.common import progress_callback, user_errors
from playground.ui.session import on_page_load, owner_of

PRECISION_LABELS = {"4bit": "4bit (NF4)", "int4": "int4 (fast 4-bit)"}


def model_status(ctx: AppContext) -> str:
    cur = ctx.models.current
    if cur is None:
        return "**No model loaded.** Pick one and press Load."
    lines = [f"**Loaded:** {cur.model_summary()}"]
    lines += [f"- {note}" for note in cur.notes]
    if cur.device == "cuda":
        import torch

        used = torch.cuda.memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        lines.append(f"- GPU memory: {used:.1f} / {total:.0f} GiB")
    return "\n".join(lines)


@dataclass
class ModelBar:
    status: gr.Markdown
    # The adapter this browser session chats with (None = the base model): a per-session choice.
    chat_adapter: gr.State


def build_model_bar(ctx: AppContext) -> ModelBar:
    choices = [(f"{p.key} ({p.size}, {p.hf_id})", p.key) for p in PRESETS.values()]
    # Loading a model changes it for everyone: on a shared playground only admins see these controls
    # (filled in on page load, when the user is known), and the handler checks again.
    with gr.Row(equal_height=True, visible=False) as load_row:
        model = gr.Dropdown(
            choices,
            value=ctx.models.current.name if ctx.models.current else EMBEDDED_KEY,
            allow_custom_value=True,
            label="Model (preset, Hugging Face id, or a folder in the models folder)",
            scale=4,
            elem_id="model-name",
        )
        precision = gr.Radio(
            [(PRECISION_LABELS.get(p, p), p) for p in PRECISIONS],
            value="auto",
            label="Precision",
            info="auto = 4bit NF4 on a GPU (what QLoRA uses); int4 = faster 4-bit for chat and "
            "comparisons, without adapters.",
            scale=3,
        )
        load = gr.Button("Load", variant="primary", scale=1, elem_id="model-load")
    with gr.Row(equal_height=True):
        adapter = gr.Dropdown(
            ["(none)"],
            value="(none)",
            label="Adapter for your chat (trained adapters in adapters/)",
            scale=4,
            elem_id="chat-adapter",
        )
        refresh = gr.Button("Refresh adapters", scale=1)
    status = gr.Markdown(elem_id="model-status")
    chat_adapter = gr.State(None)

    def adapter_choices() -> dict:
        return gr.update(choices=["(none)"] + list_adapter_names())

    def on_page(request: gr.Request):
        return model_status(ctx), gr.update(visible=owner_of(ctx, request).is_admin), adapter_choices()

    on_page_load(on_page, None, [status, load_row, adapter])

    @user_errors
    def on_adapter(name: str | None) -> tuple[str, str | None]:
        if not name or name == "(none)":
            return model_status(ctx), None
        folder = named_path(adapters_dir(), name, "adapter")
        with ctx.models.use() as loaded:
            attached = attach_adapter(loaded, folder)
        return model_status(ctx) + f"\n- Your chat uses adapter **{name}**.", attached

    adapter.change(on_adapter, adapter, [status, chat_adapter], concurrency_id="model", concurrency_limit=1)
    refresh.click(adapter_choices, None, adapter, queue=False)

    @user_errors
    def on_load(
        name: str, precision: str, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple[str, None, dict]:
        owner_of(ctx, request).require_admin("Loading a model")
        source = check_model_source(name, shared=ctx.deployment.shared)
        options = LoadOptions(precision=precision, trust_remote_code=trust_remote_code_allowed())
        ctx.models.load(source, options, progress_callback(progress))
        return model_status(ctx), None, gr.update(value="(none)")

    load.click(
        on_load,
        [model, precision],
        [status, chat_adapter, adapter],
        concurrency_id="model",
        concurrency_limit=1,
    )
    return ModelBar(status, chat_adapter)
