"""The model picker at the top of the page: one resident model shared by every tab."""

from __future__ import annotations

import gradio as gr

from playground.context import AppContext
from playground.models import EMBEDDED_KEY, PRESETS, LoadOptions
from playground.models.adapters import attach_adapter, list_adapter_names
from playground.models.loader import PRECISIONS
from playground.paths import adapters_dir
from playground.ui.common import progress_callback, user_errors

PRECISION_LABELS = {"4bit": "4bit (NF4)", "int4": "int4 (fast 4-bit)"}


def model_status(ctx: AppContext) -> str:
    cur = ctx.models.current
    if cur is None:
        return "**No model loaded.** Pick one and press Load."
    lines = [f"**Loaded:** {cur.describe()}"]
    lines += [f"- {note}" for note in cur.notes]
    if cur.device == "cuda":
        import torch

        used = torch.cuda.memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        lines.append(f"- GPU memory: {used:.1f} / {total:.0f} GiB")
    return "\n".join(lines)


def build_model_bar(ctx: AppContext) -> gr.Markdown:
    choices = [(f"{p.key} ({p.size}, {p.hf_id})", p.key) for p in PRESETS.values()]
    with gr.Row(equal_height=True):
        model = gr.Dropdown(
            choices,
            value=ctx.models.current.name if ctx.models.current else EMBEDDED_KEY,
            allow_custom_value=True,
            label="Model (preset, Hugging Face id, or local folder)",
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
        trust = gr.Checkbox(False, label="Trust remote code", scale=1)
        load = gr.Button("Load", variant="primary", scale=1, elem_id="model-load")
    with gr.Row(equal_height=True):
        adapter = gr.Dropdown(
            ["(none)"] + list_adapter_names(),
            value="(none)",
            label="Adapter for chat (trained adapters in adapters/)",
            scale=4,
            elem_id="chat-adapter",
        )
        refresh = gr.Button("Refresh adapters", scale=1)
    status = gr.Markdown(model_status(ctx), elem_id="model-status")

    @user_errors
    def on_adapter(name: str) -> str:
        if not name or name == "(none)":
            ctx.chat_adapter = None
            return model_status(ctx)
        with ctx.models.use() as loaded:
            ctx.chat_adapter = attach_adapter(loaded, adapters_dir() / name)
        return model_status(ctx) + f"\n- Chat uses adapter **{name}**."

    adapter.change(on_adapter, adapter, status, concurrency_id="model", concurrency_limit=1)
    refresh.click(lambda: gr.update(choices=["(none)"] + list_adapter_names()), None, adapter, queue=False)

    @user_errors
    def on_load(name: str, precision: str, trust: bool, progress: gr.Progress = gr.Progress()) -> str:
        options = LoadOptions(precision=precision, trust_remote_code=trust)
        ctx.models.load(name, options, progress_callback(progress))
        ctx.chat_adapter = None
        return model_status(ctx)

    load.click(on_load, [model, precision, trust], status, concurrency_id="model", concurrency_limit=1)
    return status
