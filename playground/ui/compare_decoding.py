"""Decoding side by side: one prompt, several columns of decoding settings, and a sweep of one setting."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.generation.compare import (
    MAX_SAMPLES,
    SWEEP_PARAMS,
    Column,
    ColumnResult,
    SweepPoint,
    compare_columns,
    sweep,
)
from playground.generation.settings import PRESETS, DecodingSettings
from playground.number_lists import parse_number_list
from playground.ui.common import GENERATION_EVENT, user_errors
from playground.ui.compare_shared import SharedControls, new_stop_flag, on_stop, prompt_text, seed_or_none

MAX_COLUMNS = 6
DEFAULT_COLUMNS = 3
MAX_NEW_TOKENS = 1024
# The homework's cases first, so the default three columns are greedy / focused / creative.
COLUMN_PRESETS = [
    "greedy",
    "focused (T 0.1, top-p 0.3, no-repeat 3)",
    "creative (T 1.2, top-k 10, top-p 0.9)",
    "beams 3",
    "beams 5",
    "default sampling (T 0.7, top-p 0.9)",
]
MODES = ["greedy", "sample", "beam"]
# Per-column knobs, in the order the handlers receive them.
KNOBS = (
    "mode",
    "temperature",
    "top_p",
    "top_k",
    "num_beams",
    "length_penalty",
    "no_repeat",
    "rep",
    "max_new",
)


# ---------------------------------------------------------------- settings <-> controls


def settings_from_knobs(
    mode: str,
    temperature: float,
    top_p: float,
    top_k: float,
    num_beams: float,
    length_penalty: float,
    no_repeat: float,
    rep: float,
    max_new: float,
    seed: float | None = 0,
) -> DecodingSettings:
    return DecodingSettings(
        do_sample=mode == "sample",
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        num_beams=int(num_beams) if mode == "beam" else 1,
        length_penalty=float(length_penalty),
        no_repeat_ngram_size=int(no_repeat),
        repetition_penalty=float(rep),
        max_new_tokens=int(max_new),
        seed=seed_or_none(seed),
    )


def knobs_from_settings(s: DecodingSettings) -> list[Any]:
    mode = "beam" if s.num_beams > 1 else ("sample" if s.do_sample else "greedy")
    return [
        mode,
        s.temperature,
        s.top_p,
        s.top_k,
        s.num_beams,
        s.length_penalty,
        s.no_repeat_ngram_size,
        s.repetition_penalty,
    ]


def decoding_label(s: DecodingSettings) -> str:
    """A short label for a column: only the settings that matter in its mode."""
    if s.mode == "beam":
        parts = [f"beams {s.num_beams}", f"length penalty {s.length_penalty:g}"]
    elif s.mode == "sample":
        parts = [f"T {s.temperature:g}", f"top-p {s.top_p:g}", f"top-k {s.top_k or 'off'}"]
    else:
        parts = ["greedy"]
    if s.no_repeat_ngram_size:
        parts.append(f"no-repeat {s.no_repeat_ngram_size}")
    if s.repetition_penalty != 1.0:
        parts.append(f"rep. penalty {s.repetition_penalty:g}")
    return ", ".join(parts)


def _summary(s: DecodingSettings) -> str:
    return f"{decoding_label(s)} · max {s.max_new_tokens} new tokens"


# ---------------------------------------------------------------- output formatting


def column_text(result: ColumnResult, n_samples: int = 1) -> str:
    if len(result.texts) == 1:
        note = "\n\n(deterministic: every draw is the same)" if n_samples > 1 else ""
        return result.texts[0] + note
    seed = result.settings.seed or 0
    return "\n\n".join(f"── draw {i + 1} (seed {seed + i}) ──\n{t}" for i, t in enumerate(result.texts))


def column_stats(result: ColumnResult) -> str:
    tokens = ", ".join(str(n) for n in result.new_tokens)
    parts = [
        f"**{decoding_label(result.settings)}**",
        f"new tokens {tokens}",
        f"{result.seconds:.2f} s",
        f"{result.tokens_per_s:.1f} tokens/s",
    ]
    if result.peak_memory_mb is not None:
        parts.append(f"peak GPU memory {result.peak_memory_mb:,.0f} MB")
    if result.shared_call_with > 1:
        parts.append(f"one generate call shared by {result.shared_call_with} columns")
    return " · ".join(parts)


def sweep_figure(points: list[SweepPoint], param: str) -> Any:
    """Diversity, length and perplexity of the outputs against the swept value."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("diversity (distinct-n)", "mean length (new tokens)", "perplexity of the output"),
    )
    x = [p.value for p in points]
    for name, ys, row in (
        ("distinct-1", [p.distinct_1 for p in points], 1),
        ("distinct-2", [p.distinct_2 for p in points], 1),
        ("mean length", [p.mean_length for p in points], 2),
        ("perplexity", [p.mean_perplexity for p in points], 3),
    ):
        fig.add_scatter(x=x, y=ys, name=name, mode="lines+markers", row=row, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title_text=param, row=3, col=1)
    fig.update_layout(height=620, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def parse_values(text: str, param: str) -> list[float]:
    """'0.1, 0.5, 0.9' or 'start:stop:step' (stop included)."""
    text = (text or "").strip()
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 6) for i in range(max(count, 0))]
        else:
            values = parse_number_list(text, param, float)
    except (ValueError, PlaygroundError):
        raise PlaygroundError(
            f"Could not read the {param} values {text!r}: write them as 0.1, 0.5, 0.9 or as start:stop:step."
        ) from None
    if not values:
        raise PlaygroundError(f"Give the {param} values to sweep, e.g. 0.1, 0.5, 0.9.")
    return values


# ---------------------------------------------------------------- layout


def build_decoding_tab(ctx: AppContext, shared: SharedControls) -> None:
    with gr.Row():
        instruction = gr.Textbox(
            label="Instruction",
            lines=3,
            scale=3,
            elem_id="compare-instruction",
            value="以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。",
        )
        extra = gr.Textbox(
            label="Input (optional)", lines=3, scale=2, elem_id="compare-input", value="相見時難別亦難，"
        )
    with gr.Row(equal_height=True):
        n_columns = gr.Slider(
            1, MAX_COLUMNS, value=DEFAULT_COLUMNS, step=1, label="Columns", elem_id="compare-n-columns"
        )
        samples = gr.Slider(
            1, MAX_SAMPLES, value=1, step=1, label="Samples per column", elem_id="compare-samples"
        )
        max_new_all = gr.Number(
            64,
            label="Max new tokens (all columns)",
            precision=0,
            minimum=1,
            maximum=MAX_NEW_TOKENS,
            elem_id="compare-max-new",
        )
        seed = gr.Number(0, label="Seed, shared (-1 = random)", precision=0, elem_id="compare-seed")
        run = gr.Button("Run columns", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    boxes, knob_inputs, outputs, max_news = [], [], [], []
    with gr.Row():
        for i in range(MAX_COLUMNS):
            with gr.Column(visible=i < DEFAULT_COLUMNS, min_width=220) as box:
                knobs, out, stats = _build_one_column(i)
            boxes.append(box)
            knob_inputs += knobs
            outputs += [out, stats]
            max_news.append(knobs[-1])
    with gr.Accordion("Prompt sent to the model", open=False):
        preview = gr.Textbox(show_label=False, lines=4, interactive=False, elem_id="compare-preview")

    n_columns.change(
        lambda n: [gr.update(visible=i < n) for i in range(MAX_COLUMNS)], n_columns, boxes, queue=False
    )
    max_new_all.change(
        lambda n: (
            [gr.update(value=n) for _ in range(MAX_COLUMNS)] if n and n > 0 else [gr.update()] * MAX_COLUMNS
        ),
        max_new_all,
        max_news,
        queue=False,
    )

    prompt_inputs = (instruction, extra, *shared)
    column_knobs = [knob_inputs[i * len(KNOBS) : (i + 1) * len(KNOBS)] for i in range(MAX_COLUMNS)]

    # Inputs given as a set arrive as one {component: value} dict: the columns' knobs are many.
    @user_errors
    def on_run(v: dict[Any, Any], request: gr.Request, progress: gr.Progress = gr.Progress()) -> list[Any]:
        columns = []
        for knobs in column_knobs[: int(v[n_columns])]:
            settings = settings_from_knobs(*(v[k] for k in knobs))
            columns.append(Column(f"{len(columns) + 1}. {decoding_label(settings)}", settings))
        flag = new_stop_flag(request)
        progress(0.05, desc=f"Generating {len(columns)} columns")
        with ctx.models.use() as loaded:
            prompt = prompt_text(loaded, *(v[c] for c in prompt_inputs))
            results = compare_columns(loaded, prompt, columns, int(v[samples]), seed_or_none(v[seed]), flag)
        values: list[Any] = []
        for i in range(MAX_COLUMNS):
            values += (
                [column_text(results[i], int(v[samples])), column_stats(results[i])]
                if i < len(results)
                else ["", ""]
            )
        return values + [prompt]

    inputs = {n_columns, samples, seed, *prompt_inputs, *knob_inputs}
    run.click(on_run, inputs, outputs + [preview], **GENERATION_EVENT)
    stop.click(on_stop, None, None, queue=False)
    _build_sweep(ctx, shared, instruction, extra, samples, seed, knob_inputs[: len(KNOBS)])


def _build_one_column(i: int) -> tuple[list[gr.components.Component], gr.Textbox, gr.Markdown]:
    preset_name = COLUMN_PRESETS[i]
    preset = PRESETS[preset_name]
    mode0, t0, p0, k0, b0, lp0, nr0, rep0 = knobs_from_settings(preset)
    gr.Markdown(f"### Column {i + 1}")
    preset_box = gr.Dropdown(list(PRESETS), value=preset_name, label="Preset", elem_id=f"compare-preset-{i}")
    summary = gr.Markdown(_summary(preset.with_(max_new_tokens=64)), elem_id=f"compare-summary-{i}")
    with gr.Accordion("Settings", open=False):
        mode = gr.Radio(MODES, value=mode0, label="Decoding", elem_id=f"compare-mode-{i}")
        temperature = gr.Slider(0.05, 2, value=t0, step=0.05, label="Temperature", visible=mode0 == "sample")
        top_p = gr.Slider(0.05, 1, value=p0, step=0.05, label="Top-p", visible=mode0 == "sample")
        top_k = gr.Slider(0, 200, value=k0, step=1, label="Top-k (0 = off)", visible=mode0 == "sample")
        beams = gr.Slider(1, 8, value=b0, step=1, label="Beams", visible=mode0 == "beam")
        length_penalty = gr.Slider(
            -2, 3, value=lp0, step=0.1, label="Length penalty", visible=mode0 == "beam"
        )
        no_repeat = gr.Slider(0, 6, value=nr0, step=1, label="No-repeat n-gram size (0 = off)")
        rep = gr.Slider(0.8, 2, value=rep0, step=0.05, label="Repetition penalty")
        max_new = gr.Slider(
            1, MAX_NEW_TOKENS, value=64, step=1, label="Max new tokens", elem_id=f"compare-max-new-{i}"
        )
    out = gr.Textbox(label="Output", lines=8, max_lines=30, interactive=False, elem_id=f"compare-out-{i}")
    stats = gr.Markdown("", elem_id=f"compare-stats-{i}")
    knobs = [mode, temperature, top_p, top_k, beams, length_penalty, no_repeat, rep, max_new]

    preset_box.change(lambda name: knobs_from_settings(PRESETS[name]), preset_box, knobs[:-1], queue=False)
    # The settings sit in a closed accordion, so the line above it says what the column will run.
    gr.on(
        [k.change for k in knobs],
        lambda *values: _summary(settings_from_knobs(*values)),
        knobs,
        summary,
        queue=False,
    )
    mode.change(
        lambda m: [gr.update(visible=m == "sample")] * 3 + [gr.update(visible=m == "beam")] * 2,
        mode,
        [temperature, top_p, top_k, beams, length_penalty],
        queue=False,
    )
    return knobs, out, stats


def _build_sweep(
    ctx: AppContext,
    shared: SharedControls,
    instruction: gr.Textbox,
    extra: gr.Textbox,
    samples: gr.Slider,
    seed: gr.Number,
    first_column: list[gr.components.Component],
) -> None:
    with gr.Accordion("Sweep one setting (starts from column 1's settings)", open=False):
        with gr.Row(equal_height=True):
            param = gr.Dropdown(
                list(SWEEP_PARAMS), value="temperature", label="Setting", elem_id="sweep-param"
            )
            values = gr.Textbox(
                "0.1:1.5:0.2", label="Values (0.1, 0.5, 0.9 or start:stop:step)", elem_id="sweep-values"
            )
            run = gr.Button("Run sweep", elem_id="sweep-run")
        gr.Markdown(
            "Each value runs as a column with the samples per column above (more samples give steadier "
            "numbers). Perplexity is the model's own perplexity of each output given the prompt."
        )
        plot = gr.Plot(elem_id="sweep-plot")
        table = gr.Dataframe(
            headers=["value", "distinct-1", "distinct-2", "mean length", "perplexity", "first output"],
            interactive=False,
            wrap=True,
            elem_id="sweep-table",
        )

    prompt_inputs = (instruction, extra, *shared)

    @user_errors
    def on_sweep(
        v: dict[Any, Any], request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple[Any, list[list[Any]]]:
        values_in = parse_values(v[values], v[param])
        base = settings_from_knobs(*(v[k] for k in first_column))
        flag = new_stop_flag(request)
        progress(0.05, desc=f"Sweeping {v[param]} over {len(values_in)} values")
        with ctx.models.use() as loaded:
            prompt = prompt_text(loaded, *(v[c] for c in prompt_inputs))
            points = sweep(
                loaded, prompt, base, v[param], values_in, int(v[samples]), seed_or_none(v[seed]), flag
            )
        rows = [
            [p.value, round(p.distinct_1, 3), round(p.distinct_2, 3), round(p.mean_length, 1)]
            + [round(p.mean_perplexity, 2), p.texts[0][:200]]
            for p in points
        ]
        return sweep_figure(points, v[param]), rows

    run.click(
        on_sweep,
        {param, values, samples, seed, *prompt_inputs, *first_column},
        [plot, table],
        **GENERATION_EVENT,
    )
