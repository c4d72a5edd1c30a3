"""Training tab: LoRA/QLoRA jobs launched from the browser, with live loss and eval curves.

The job runs in its own process (playground.training.JobManager); this tab only submits,
polls the job's event file every two seconds, and draws what it finds.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.evaluation.runner import EvalConfig, evaluate
from playground.identity import Owner, display_owner
from playground.models.adapters import attach_adapter
from playground.models.sources import check_model_source
from playground.prompts.templates import TEMPLATES, adapter_template, training_template
from playground.training import TrainingConfig, format_example, list_adapters, preflight, render_masked
from playground.training.config import LOSS_MODES
from playground.ui.common import cancel_on_close, on_tab_shown, user_errors
from playground.ui.data_picker import UPLOAD_HEIGHT, build_data_picker, load_choice, resolve_path
from playground.ui.session import on_page_load, owner_of

# Presets per model size: what the homework used for a 7B model, and a CPU demo for the embedded one.
PRESETS: dict[str, dict[str, Any]] = {
    "CPU demo (135M, a minute)": dict(
        method="lora",
        r=8,
        alpha=16,
        target_modules="q,v",
        lr=1e-3,
        max_steps=30,
        micro_batch=4,
        grad_accum=1,
        max_length=256,
        eval_every=10,
        save_every=10,
        first_n=200,
        eval_size=4,  # the demo sets have 30 training rows; keep most of them for training
    ),
    "7B QLoRA (homework)": dict(
        method="qlora",
        r=64,
        alpha=16,
        target_modules="q,v",
        lr=2e-4,
        max_steps=0,
        epochs=1,
        micro_batch=4,
        grad_accum=4,
        # Cuts nothing on the course data (a Tang pair is ~150 tokens), and makes the packing budget
        # (micro_batch x max_length = 4096 tokens) hold a whole 16-example step in one pass: at 512
        # a step spills a few tokens into a second pass that costs as much as the first.
        max_length=1024,
        eval_every=50,
        save_every=50,
        first_n=3000,
        eval_size=100,
    ),
}
# Per browser session: set when its tab closes, so its adapter evaluation stops.
_eval_flags: dict[str, threading.Event] = {}
LOSS_LABELS = {"masked_prompt": "answer only", "full_text": "full text", "no_template": "no template"}
FORM_FIELDS = [
    "first_n",
    "eval_size",
    "loss_mode",
    "method",
    "r",
    "alpha",
    "dropout",
    "target_modules",
    "lr",
    "scheduler",
    "warmup_steps",
    "epochs",
    "max_steps",
    "micro_batch",
    "grad_accum",
    "max_length",
    "seed",
    "eval_every",
    "save_every",
    "packing",
    "torch_compile",
    "fused_layers",
    "activation_memory_gb",
]


def curves_figure(events: list[dict[str, Any]], title: str = "") -> go.Figure:
    steps = [e for e in events if e.get("type") == "step"]
    evals = [e for e in events if e.get("type") == "eval"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(
        x=[e["step"] for e in steps], y=[e["loss"] for e in steps], name="training loss", mode="lines"
    )
    if evals:
        key = "eval_perplexity" if "eval_perplexity" in evals[0] else "mean_perplexity"
        fig.add_scatter(
            x=[e["step"] for e in evals],
            y=[e.get(key) for e in evals],
            name="eval perplexity",
            mode="lines+markers",
            secondary_y=True,
        )
    fig.update_layout(
        title=title or "Learning curves", height=360, margin={"l": 40, "r": 40, "t": 50, "b": 40}
    )
    fig.update_xaxes(title_text="optimizer step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="eval perplexity", secondary_y=True)
    return fig


def _blank_if_none(value: Any) -> str:
    return "" if value is None else str(value)


def _fused_text(start: dict[str, Any]) -> str:
    kept = [f"{start['kept_layers']} keep their activations"] if start.get("kept_layers") else []
    kept += [f"{start['kept_weights']} their weights too"] if start.get("kept_weights") else []
    return "fused layers" + (f" ({', '.join(kept)})" if kept else "")


def progress_text(events: list[dict[str, Any]], status: dict[str, Any]) -> str:
    start = next((e for e in reversed(events) if e.get("type") == "start"), {})
    last = next((e for e in reversed(events) if e.get("type") == "step"), None)
    total = start.get("total_steps") or status.get("total_steps") or 0
    state = status.get("status", "?")
    lines = [f"**Status:** {state}" + (f" — {status.get('message')}" if status.get("message") else "")]
    if last and total:
        done = last["step"] / total
        bar = "█" * int(done * 30) + "░" * (30 - int(done * 30))
        lines.append(
            f"`{bar}` step {last['step']}/{total} · loss {last['loss']:.4f} · lr {last['lr']:.2e} · "
            f"grad-norm {last.get('grad_norm', 0):.2f} · {last.get('tokens_per_s', 0):.0f} tokens/s · "
            + ("ETA after the next step" if last.get("eta_s") is None else f"ETA {last['eta_s']:.0f} s")
        )
    if start:
        gpus = start.get("gpus", 1)
        lines.append(
            f"{start.get('method', '?')} on {start.get('device', '?')}"
            + (f" × {gpus} (data parallel)" if gpus > 1 else "")
            + f" · {'packed' if start.get('packing') else 'padded'} batches"
            + (f" · {_fused_text(start)}" if start.get("fused_layers") else "")
        )
    if start.get("notes"):
        lines.append("\n".join(f"- {n}" for n in start["notes"]))
    if status.get("adapter"):
        lines.append(f"**Adapter saved:** `{status['adapter']}`")
    # Blank lines between: Markdown runs single-newline lines together into one paragraph.
    return "\n\n".join(lines)


def masked_html(pieces: list[tuple[str, bool]]) -> str:
    spans = [
        f"<span class='{'trained-token' if trained else 'masked-token'}'>{html.escape(text)}</span>"
        for text, trained in pieces
    ]
    return (
        "<div id='masked-example' style='white-space:pre-wrap;font-family:monospace;line-height:1.6'>"
        + "".join(spans)
        + "</div><div style='font-size:12px;color:#6b7280'>grey: the prompt, which the model reads but "
        "is not trained to write (no loss); black: the tokens it learns to write</div>"
    )


def saved_text(job: Any) -> str:
    """What a job has on disk: a finished job's adapter is at its last step, not its last checkpoint."""
    if job.status == "finished" and job.total_steps:
        return f"adapter, step {job.total_steps}"
    return f"checkpoint, step {job.checkpoint_step}" if job.checkpoint_step else ""


def _jobs_frame(jobs: Any, viewer: Owner | None = None) -> pd.DataFrame:
    rows = [
        {
            "id": j.id,
            "status": j.status,
            "owner": display_owner(j.owner, viewer),
            "model": j.model,
            "output": j.output or "",
            "saved": saved_text(j),
            "message": j.message[:80],
        }
        for j in jobs.jobs()
    ]
    return pd.DataFrame(rows or [{"id": "", "status": "no jobs yet"}])


def _adapters_frame() -> pd.DataFrame:
    rows = [
        {
            "name": a.name,
            "base model": a.base_model,
            "created": a.created,
            **{k: round(v, 4) for k, v in a.metrics.items() if isinstance(v, (int, float))},
        }
        for a in list_adapters()
    ]
    return pd.DataFrame(rows or [{"name": "no adapters yet"}])


def adapter_names() -> list[str]:
    return ["(none)"] + [a.name for a in list_adapters()]


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def presets_for(gpu: bool) -> dict[str, dict[str, Any]]:
    """QLoRA needs a GPU: a CPU-only machine is offered only what it can run."""
    return {name: p for name, p in PRESETS.items() if gpu or p["method"] != "qlora"}


def build_training_tab(ctx: AppContext) -> None:
    jobs = ctx.jobs
    gpu = gpu_available()
    presets = presets_for(gpu)
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Textbox(
                ctx.models.current.name if ctx.models.current else "smollm2-135m-instruct",
                label="Base model (preset, HF id or folder)",
                elem_id="train-model",
            )
            data = build_data_picker("Training data", "poem_continuation_train.json", elem_id="train-data")
            eval_data = build_data_picker("Eval data (optional)", "", elem_id="train-eval", allow_none=True)
            template = gr.Dropdown([t.name for t in TEMPLATES.values()], value="alpaca", label="Template")
            output = gr.Textbox(
                label="Adapter name (adapters/NAME)", placeholder="e.g. tang-lora", elem_id="train-output"
            )
            resume_from = gr.Dropdown(["(none)"], value="(none)", label="Continue from adapter")
        with gr.Column(scale=3):
            preset = gr.Dropdown(
                list(presets), value=list(presets)[0], label="Preset", elem_id="train-preset"
            )
            defaults = {**TrainingConfig().to_dict(), **presets[list(presets)[0]]}
            with gr.Row():
                first_n = gr.Number(defaults["first_n"], label="First N examples (0 = all)", precision=0)
                eval_size = gr.Number(defaults["eval_size"], label="Held-out examples", precision=0)
                loss_mode = gr.Dropdown(
                    [(LOSS_LABELS.get(m, m), m) for m in LOSS_MODES],
                    value=defaults["loss_mode"],
                    label="Loss on",
                    min_width=220,
                    elem_id="train-loss-on",
                )
                method = gr.Dropdown(
                    ["auto", "lora", "qlora"] if gpu else ["auto", "lora"],
                    value=defaults["method"],
                    label="Method",
                )
            with gr.Row():
                r = gr.Number(defaults["r"], label="r", precision=0)
                alpha = gr.Number(defaults["alpha"], label="alpha")
                dropout = gr.Number(defaults["dropout"], label="dropout")
                target_modules = gr.Dropdown(
                    ["q,v", "attention", "all-linear"],
                    value=defaults["target_modules"],
                    label="Target modules",
                    allow_custom_value=True,
                )
            with gr.Row():
                lr = gr.Number(defaults["lr"], label="Learning rate")
                scheduler = gr.Dropdown(
                    ["linear", "cosine", "constant"], value=defaults["scheduler"], label="Scheduler"
                )
                warmup_steps = gr.Number(defaults["warmup_steps"], label="Warm-up steps", precision=0)
                epochs = gr.Number(defaults["epochs"], label="Epochs")
                max_steps = gr.Number(
                    defaults["max_steps"],
                    label="Max steps (0 = epochs)",
                    precision=0,
                    elem_id="train-max-steps",
                )
            with gr.Row():
                micro_batch = gr.Number(defaults["micro_batch"], label="Micro-batch", precision=0)
                grad_accum = gr.Number(defaults["grad_accum"], label="Grad accumulation", precision=0)
                max_length = gr.Number(defaults["max_length"], label="Max length", precision=0)
                seed = gr.Number(defaults["seed"], label="Seed", precision=0)
                eval_every = gr.Number(defaults["eval_every"], label="Eval every", precision=0)
                save_every = gr.Number(defaults["save_every"], label="Checkpoint every", precision=0)
            # Checked means "auto": packed for decoder-only models, padded for encoder-decoder ones.
            packing = gr.Checkbox(
                defaults["packing"] is not False,
                label="Pack examples (no padding; same loss, fewer passes)",
                info="Puts several short examples in one row instead of padding each; the loss is the same.",
            )
            # Only what speeds up a GPU run; on a CPU-only machine the group is not shown at all.
            with gr.Accordion("GPU speed", open=False, visible=gpu, elem_id="train-gpu-speed"):
                torch_compile = gr.Checkbox(
                    defaults["torch_compile"],
                    label="Compile the layers (torch.compile)",
                    info="Spends about a minute once turning the layers into faster GPU code; later steps are quicker.",
                )
                # Checked means "auto": Llama/Mistral layers under gradient checkpointing (QLoRA).
                fused_layers = gr.Checkbox(
                    defaults["fused_layers"] is not False,
                    label="Fused layers",
                    info="QLoRA on Llama/Mistral: each layer computes its own backward pass, which saves "
                    "memory and time.",
                )
                # A textbox, not a Number: a Number shows (and sends) 0 when empty, and empty means auto.
                activation_memory_gb = gr.Textbox(
                    _blank_if_none(defaults["activation_memory_gb"]),
                    label="Activation memory, GB",
                    info="GPU memory for keeping layer results instead of recomputing them: empty = "
                    "whatever is free, 0 = always recompute (least memory).",
                    placeholder="auto",
                    elem_id="train-activation-memory",
                )
    form = [
        first_n,
        eval_size,
        loss_mode,
        method,
        r,
        alpha,
        dropout,
        target_modules,
        lr,
        scheduler,
        warmup_steps,
        epochs,
        max_steps,
        micro_batch,
        grad_accum,
        max_length,
        seed,
        eval_every,
        save_every,
        packing,
        torch_compile,
        fused_layers,
        activation_memory_gb,
    ]

    with gr.Row():
        preview_btn = gr.Button("Preview one formatted example", elem_id="train-preview")
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop (keeps the last checkpoint)", variant="stop", elem_id="train-stop")
        resume = gr.Button("Resume selected job", elem_id="train-resume")
    preview = gr.HTML(elem_id="train-preview-html")
    job_id = gr.State(None)
    offset = gr.State(0)
    events_state = gr.State([])
    status_md = gr.Markdown(elem_id="train-status")
    chart = gr.Plot(label="Loss and eval perplexity", elem_id="train-chart")
    log = gr.Textbox(label="Log", lines=6, interactive=False, elem_id="train-log")
    jobs_table = gr.Dataframe(label="Jobs (click one to follow it)", interactive=False, elem_id="train-jobs")
    gr.Markdown("### Saved adapters")
    adapters_table = gr.Dataframe(
        label="Adapters (click one for its curve)",
        interactive=False,
        elem_id="train-adapters",
    )
    refresh = gr.Button("Refresh lists", size="sm")
    adapter_chart = gr.Plot(label="Adapter curve")
    selected_adapter = gr.State(None)
    with gr.Accordion("Evaluate the selected adapter against its base model", open=True):
        eval_set = build_data_picker("Test set", "poem_continuation_test.json", elem_id="train-eval-test")
        eval_refs = gr.File(
            label="Ground-truth file (when the test set has no answers, e.g. Tang_testing_gt.txt: one per line)",
            file_types=[".txt"],
            height=UPLOAD_HEIGHT,
            elem_id="train-eval-refs",
        )
        with gr.Row():
            eval_limit = gr.Number(20, label="Limit (first N examples, 0 = all)", precision=0)
            evaluate_btn = gr.Button("Evaluate this adapter", variant="primary", elem_id="train-evaluate")
        evaluate_md = gr.Markdown(elem_id="train-evaluate-status")
    timer = gr.Timer(2.0, active=False)

    def config_from_form(
        model_name, ex, up, eval_ex, eval_up, template_name, output_name, resume_name, *values, keep_for=None
    ):
        data_path = resolve_path(ex, up, keep_for)
        if data_path is None:
            raise PlaygroundError("Pick a training data set or upload one.")
        if ctx.deployment.shared:
            model_name = check_model_source(model_name)
        eval_path = resolve_path(eval_ex, eval_up, keep_for)
        fields = dict(zip(FORM_FIELDS, values, strict=True))
        for key in (
            "first_n",
            "eval_size",
            "r",
            "warmup_steps",
            "max_steps",
            "micro_batch",
            "grad_accum",
            "max_length",
            "seed",
            "eval_every",
            "save_every",
        ):
            fields[key] = int(fields[key] or 0)
        fields["packing"] = None if fields["packing"] else False
        fields["torch_compile"] = bool(fields["torch_compile"])
        fields["fused_layers"] = None if fields["fused_layers"] else False
        fields["activation_memory_gb"] = TrainingConfig.from_dict(
            {"activation_memory_gb": fields["activation_memory_gb"]}
        ).activation_memory_gb
        return TrainingConfig(
            model=model_name.strip(),
            data=str(data_path),
            eval_data=str(eval_path) if eval_path else "",
            template=template_name,
            output=f"adapters/{output_name.strip()}" if output_name and output_name.strip() else "",
            resume_from="" if resume_name in (None, "(none)") else resume_name,
            **fields,
        )

    form_inputs = [model, *data.inputs, *eval_data.inputs, template, output, resume_from, *form]

    def apply_preset(name: str):
        values = {**TrainingConfig().to_dict(), **PRESETS[name]}
        values["packing"] = values["packing"] is not False
        values["fused_layers"] = values["fused_layers"] is not False
        values["activation_memory_gb"] = _blank_if_none(values["activation_memory_gb"])
        return [gr.update(value=values[f]) for f in FORM_FIELDS]

    preset.change(apply_preset, preset, form, queue=False)

    @user_errors
    def on_preview(*inputs):
        config = config_from_form(*inputs).resolved()
        prepared = preflight(config)
        with ctx.models.use() as loaded:
            if loaded.name != config.model and loaded.source != config.model:
                gr.Info(f"Preview uses the tokenizer of the loaded model {loaded.name}.")
            formatted = format_example(
                prepared.train[0],
                loaded.tokenizer,
                training_template(config.template, config.system, loaded.default_template),
                config.loss_mode,
                config.max_length,
                seq2seq=loaded.is_seq2seq,
            )
            pieces = render_masked(formatted, loaded.tokenizer)
        # Encoder-decoder: the prompt goes to the encoder and the labels to the decoder.
        n_tokens = len(formatted.input_ids) + (len(formatted.labels) if formatted.seq2seq else 0)
        head = (
            f"<p>{len(prepared.train)} training and {len(prepared.eval)} held-out examples; this one has "
            f"{n_tokens} tokens, {formatted.n_trained} of them trained.</p>"
        )
        return head + masked_html(pieces)

    preview_btn.click(on_preview, form_inputs, preview, concurrency_id="model", concurrency_limit=1)

    def jobs_frame(request: gr.Request | None = None) -> pd.DataFrame:
        return _jobs_frame(jobs, owner_of(ctx, request) if request is not None else None)

    adapters_frame = _adapters_frame

    @user_errors
    def on_start(request: gr.Request, *inputs):
        owner = owner_of(ctx, request)
        config = config_from_form(*inputs, keep_for=owner.id)
        new_id = jobs.submit(config, owner=owner)
        gr.Info(f"Job {new_id} queued.")
        return (
            new_id,
            0,
            [],
            f"**Status:** queued ({new_id})",
            curves_figure([]),
            jobs_frame(request),
            gr.Timer(active=True),
        )

    start.click(
        on_start,
        form_inputs,
        [job_id, offset, events_state, status_md, chart, jobs_table, timer],
    )

    def poll(current: str | None, since: int, seen: list[dict[str, Any]], request: gr.Request):
        if not current:
            return since, seen, *[gr.skip()] * 7
        job = jobs.job(current)
        new, since = job.events(since)
        seen = seen + new
        status = job.status()
        active = status.get("status") in ("queued", "running")
        return (
            since,
            seen,
            progress_text(seen, status),
            curves_figure(seen, f"Job {current}") if new or not active else gr.skip(),
            job.log_tail(12),
            jobs_frame(request),
            adapters_frame() if not active else gr.skip(),
            gr.update(choices=adapter_names()) if not active else gr.skip(),
            gr.Timer(active=active),
        )

    timer.tick(
        poll,
        [job_id, offset, events_state],
        [offset, events_state, status_md, chart, log, jobs_table, adapters_table, resume_from, timer],
        queue=False,
    )

    @user_errors
    def on_stop(current: str | None, request: gr.Request) -> str:
        if not current:
            raise PlaygroundError("No job selected.")
        jobs.stop(current, by=owner_of(ctx, request))
        return f"**Status:** stopping {current} (saving a checkpoint)..."

    stop.click(on_stop, job_id, status_md)

    @user_errors
    def on_resume(current: str | None, request: gr.Request):
        if not current:
            raise PlaygroundError("Select a job in the jobs table first.")
        jobs.resume(current, by=owner_of(ctx, request))
        return 0, [], f"**Status:** queued again ({current})", gr.Timer(active=True)

    resume.click(on_resume, job_id, [offset, events_state, status_md, timer])

    def on_job_select(table: pd.DataFrame, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        chosen = str(table.iloc[row]["id"])
        if not chosen:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return chosen, 0, [], gr.Timer(active=True)

    jobs_table.select(on_job_select, jobs_table, [job_id, offset, events_state, timer], queue=False)

    def on_adapter_select(table: pd.DataFrame, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        name = str(table.iloc[row]["name"])
        info = next((a for a in list_adapters() if a.name == name), None)
        if info is None:
            return gr.skip()
        events = [{"type": "step", "step": s, "loss": loss} for s, loss in info.loss_history]
        events += [
            {"type": "eval", "step": e[0], "eval_perplexity": e[-1]} for e in info.eval_history if len(e) >= 2
        ]
        return name, curves_figure(events, f"Adapter {name}")

    adapters_table.select(on_adapter_select, adapters_table, [selected_adapter, adapter_chart])

    @user_errors
    def on_evaluate(
        name: str | None,
        ex: str | None,
        up: str | None,
        refs: str | None,
        limit: float | None,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        if not name:
            raise PlaygroundError("Click an adapter in the table first.")
        info = next((a for a in list_adapters() if a.name == name), None)
        if info is None:
            raise PlaygroundError(f"Adapter {name} is gone; press Refresh lists.")
        dataset = load_choice(ex, up, refs, what="test set")
        config = EvalConfig(metrics=("perplexity",), limit=int(limit) if limit else None)
        closed = _eval_flags[getattr(request, "session_hash", None) or "default"] = threading.Event()
        with ctx.models.use() as loaded:
            adapter = attach_adapter(loaded, info.path)
            # Score with the template the adapter was trained with, so the numbers mean the same thing.
            template = adapter_template(info.settings, loaded.default_template)
            lines = [
                f"**{dataset.name}**, {len(dataset.examples[: config.limit or None])} examples, perplexity:"
            ]
            for label, which in (("base model", None), (f"adapter {name}", adapter)):
                [outcome] = evaluate(
                    loaded,
                    dataset,
                    template,
                    config,
                    leaderboard=ctx.leaderboard,
                    adapter=which,
                    progress=lambda f, d, label=label: progress(f, desc=f"{label}: {d}"),
                    should_stop=closed.is_set,
                )
                lines.append(
                    f"- {label}: mean {outcome.metrics['mean_perplexity']:.3f}, corpus "
                    f"{outcome.metrics['corpus_perplexity']:.3f} (run #{outcome.run_id})"
                )
        lines.append("Both runs are on the Leaderboard tab.")
        return "\n".join(lines)

    cancel_on_close(_eval_flags)
    evaluate_btn.click(
        on_evaluate,
        [selected_adapter, *eval_set.inputs, eval_refs, eval_limit],
        evaluate_md,
        concurrency_id="model",
        concurrency_limit=1,
    )

    def on_refresh(request: gr.Request):
        return jobs_frame(request), adapters_frame(), gr.update(choices=adapter_names())

    refresh.click(on_refresh, None, [jobs_table, adapters_table, resume_from], queue=False)
    # Filled once the page (and so the user) is known, never as initial values before login;
    # read again whenever the tab is opened.
    on_page_load(on_refresh, None, [jobs_table, adapters_table, resume_from])
    on_tab_shown(on_refresh, None, [jobs_table, adapters_table, resume_from])
