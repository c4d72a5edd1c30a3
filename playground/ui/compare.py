"""Side-by-side tab: decoding columns on one prompt, a sweep chart, and base model vs adapters."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.data import list_examples, load_dataset
from playground.errors import PlaygroundError
from playground.generation.adapter_compare import (
    ComparisonTable,
    attach_adapters,
    compare_adapters,
    export_table,
    restoring_adapters,
)
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
from playground.models.loader import LoadedModel
from playground.prompts.templates import TEMPLATES, PromptTemplate, get_template
from playground.ui.common import user_errors

MAX_COLUMNS = 6
DEFAULT_COLUMNS = 3
MAX_TABLE_PROMPTS = 200
MAX_NEW_TOKENS = 1024
MODEL_DEFAULT = "model default"
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

_stop_flags: dict[str, threading.Event] = {}


def _new_stop_flag(request: gr.Request | None) -> threading.Event:
    flag = threading.Event()
    _stop_flags[getattr(request, "session_hash", None) or "default"] = flag
    return flag


def _on_stop(request: gr.Request) -> None:
    flag = _stop_flags.get(getattr(request, "session_hash", None) or "default")
    if flag:
        flag.set()


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
        seed=_seed(seed),
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


def describe(s: DecodingSettings) -> str:
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
    return f"{describe(s)} · max {s.max_new_tokens} new tokens"


def _seed(seed: float | None) -> int | None:
    return None if seed is None or seed < 0 else int(seed)


def _template(loaded: LoadedModel, name: str, custom: str) -> PromptTemplate:
    if name == MODEL_DEFAULT:
        return loaded.default_template
    if name == "custom":
        if not custom.strip():
            raise PlaygroundError("Type a custom template, with {instruction} where the prompt goes.")
        return get_template(custom)
    return get_template(name)


def _prompt(
    loaded: LoadedModel, instruction: str, input: str, template_name: str, custom: str, system: str
) -> str:
    if not instruction.strip():
        raise PlaygroundError("Type an instruction first.")
    return _render(loaded, _template(loaded, template_name, custom), system, instruction, input)


def _render(
    loaded: LoadedModel, template: PromptTemplate, system: str, instruction: str, input: str = ""
) -> str:
    return template.render(instruction, input, system if system.strip() else None, loaded.tokenizer)


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
        f"**{describe(result.settings)}**",
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
            values = [float(v) for v in re.split(r"[,\s]+", text) if v]
    except ValueError:
        raise PlaygroundError(
            f"Could not read the {param} values {text!r}: write them as 0.1, 0.5, 0.9 or as start:stop:step."
        ) from None
    if not values:
        raise PlaygroundError(f"Give the {param} values to sweep, e.g. 0.1, 0.5, 0.9.")
    return values


def parse_rows(text: str, n_rows: int) -> list[int]:
    """'1-5, 8' -> 0-based indexes; blank means every row."""
    if not (text or "").strip():
        return list(range(n_rows))
    picked: list[int] = []
    for part in re.split(r"[,\s]+", text.strip()):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise PlaygroundError(f"Rows: {part!r} is not a row number or a range like 3-7.")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= first <= last <= n_rows:
            raise PlaygroundError(f"Rows: {part} is outside 1-{n_rows} (the data set has {n_rows} rows).")
        picked += [i - 1 for i in range(first, last + 1) if i - 1 not in picked]
    return picked


# ---------------------------------------------------------------- layout


def build_compare_tab(ctx: AppContext) -> None:
    gr.Markdown(
        "One prompt, several columns of decoding settings, all on the same seed, so that a difference "
        "between columns is the setting's and not luck's. Greedy and sampling columns share one batched "
        "generate call; each beam setting runs on its own."
    )
    with gr.Row():
        template = gr.Dropdown(
            [(f"{MODEL_DEFAULT}: the loaded model's own", MODEL_DEFAULT)]
            + [(f"{t.name}: {t.notes}", t.name) for t in TEMPLATES.values()]
            + [("custom (below)", "custom")],
            value=MODEL_DEFAULT,
            label="Prompt template",
            elem_id="compare-template",
        )
        system = gr.Textbox(label="System prompt (optional)", lines=1, elem_id="compare-system")
    custom = gr.Textbox(label="Custom template ({system}, {instruction}, {input})", lines=2, visible=False)
    template.change(lambda t: gr.update(visible=t == "custom"), template, custom)
    shared = (template, custom, system)
    with gr.Tabs():
        with gr.Tab("Decoding side by side", id="compare-decoding"):
            _build_columns(ctx, shared)
        with gr.Tab("Base model vs adapters", id="compare-adapters"):
            _build_adapters(ctx, shared)


def _build_columns(ctx: AppContext, shared: tuple[gr.Dropdown, gr.Textbox, gr.Textbox]) -> None:
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
            columns.append(Column(f"{len(columns) + 1}. {describe(settings)}", settings))
        flag = _new_stop_flag(request)
        progress(0.05, desc=f"Generating {len(columns)} columns")
        with ctx.models.use() as loaded:
            prompt = _prompt(loaded, *(v[c] for c in prompt_inputs))
            results = compare_columns(loaded, prompt, columns, int(v[samples]), _seed(v[seed]), flag)
        values: list[Any] = []
        for i in range(MAX_COLUMNS):
            values += (
                [column_text(results[i], int(v[samples])), column_stats(results[i])]
                if i < len(results)
                else ["", ""]
            )
        return values + [prompt]

    inputs = {n_columns, samples, seed, *prompt_inputs, *knob_inputs}
    run.click(on_run, inputs, outputs + [preview], concurrency_id="model", concurrency_limit=1)
    stop.click(_on_stop, None, None, queue=False)
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
    shared: tuple[gr.Dropdown, gr.Textbox, gr.Textbox],
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
        flag = _new_stop_flag(request)
        progress(0.05, desc=f"Sweeping {v[param]} over {len(values_in)} values")
        with ctx.models.use() as loaded:
            prompt = _prompt(loaded, *(v[c] for c in prompt_inputs))
            points = sweep(loaded, prompt, base, v[param], values_in, int(v[samples]), _seed(v[seed]), flag)
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
        concurrency_id="model",
        concurrency_limit=1,
    )


def _adapter_choices() -> list[tuple[str, str]]:
    from playground.training.adapters import list_adapters

    return [(f"{a.name} (base: {a.base_model or 'unknown'})", str(a.path)) for a in list_adapters()]


def _example_choices() -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_examples()]


def _build_adapters(ctx: AppContext, shared: tuple[gr.Dropdown, gr.Textbox, gr.Textbox]) -> None:
    gr.Markdown(
        "The same prompts, decoding and seed for the base model and each adapter, all on one copy of the "
        "base weights (adapters are switched, not reloaded). The model is left as it was afterwards."
    )
    with gr.Row(equal_height=True):
        adapters = gr.CheckboxGroup(
            _adapter_choices(),
            label="Adapters",
            info="Trained adapters in the adapters folder (Training tab); press Refresh after training.",
            scale=4,
            elem_id="adapter-choices",
        )
        include_base = gr.Checkbox(
            True, label="Include the base model", scale=1, elem_id="adapter-include-base"
        )
        refresh = gr.Button("Refresh list", scale=1)
    source = gr.Radio(["paste", "data set"], value="paste", label="Prompts", elem_id="adapter-source")
    pasted = gr.Textbox(
        label="Prompts, one per line",
        lines=5,
        elem_id="adapter-prompts",
        placeholder="以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。相見時難別亦難，",
    )
    with gr.Row(visible=False) as data_row:
        example = gr.Dropdown(_example_choices(), label="Demo data set", allow_custom_value=False)
        upload = gr.File(label="...or your data file", file_types=[".json", ".jsonl", ".csv", ".tsv"])
        refs = gr.File(label="Reference answers, one per line (optional)", file_types=[".txt"])
        rows_spec = gr.Textbox("1-5", label="Rows (e.g. 1-5, 8; blank = all)", elem_id="adapter-rows")
    with gr.Row(equal_height=True):
        preset = gr.Dropdown(list(PRESETS), value="greedy", label="Decoding", elem_id="adapter-preset")
        max_new = gr.Number(64, label="Max new tokens", precision=0, elem_id="adapter-max-new")
        seed = gr.Number(0, label="Seed (-1 = random)", precision=0, elem_id="adapter-seed")
        run = gr.Button("Compare", variant="primary", elem_id="adapter-run")
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown("", elem_id="adapter-status")
    table_view = gr.Dataframe(interactive=False, wrap=True, elem_id="adapter-table")
    with gr.Row():
        export_csv = gr.Button("Export CSV", elem_id="adapter-export-csv")
        export_json = gr.Button("Export JSON", elem_id="adapter-export-json")
        exported = gr.File(label="Exported table", interactive=False, elem_id="adapter-export")
    last_table = gr.State(None)

    source.change(
        lambda s: (gr.update(visible=s == "paste"), gr.update(visible=s != "paste")),
        source,
        [pasted, data_row],
        queue=False,
    )
    refresh.click(lambda: gr.update(choices=_adapter_choices()), None, adapters, queue=False)

    @user_errors
    def on_compare(
        folders: list[str],
        with_base: bool,
        source_name: str,
        pasted_text: str,
        example_path: str | None,
        upload_path: str | None,
        refs_path: str | None,
        rows_text: str,
        preset_name: str,
        max_new_tokens: float | None,
        seed_value: float | None,
        template_name: str,
        custom_text: str,
        system_text: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, str, ComparisonTable]:
        items = _prompt_items(source_name, pasted_text, upload_path or example_path, refs_path, rows_text)
        if not folders and not with_base:
            raise PlaygroundError("Pick at least one adapter, or include the base model.")
        settings = PRESETS[preset_name].with_(
            max_new_tokens=int(max_new_tokens or 64), seed=_seed(seed_value)
        )
        flag = _new_stop_flag(request)

        def report(done: int, total: int) -> None:
            progress(done / total, desc=f"Generating: batch {done} of {total}")

        with ctx.models.use() as loaded, restoring_adapters(loaded):
            progress(0.0, desc="Attaching adapters")
            names = attach_adapters(loaded, folders or [])
            template = _template(loaded, template_name, custom_text)
            prompts = [_render(loaded, template, system_text, ins, inp) for ins, inp, _ in items]
            table = compare_adapters(
                loaded,
                prompts,
                ([None] if with_base else []) + names,
                settings,
                references=[ref for _, _, ref in items],
                labels=[f"{ins}\n{inp}".strip() for ins, inp, _ in items],
                progress=report,
                stop=flag,
            )
        times = ", ".join(f"{c} {s:.1f} s" for c, s in zip(table.columns, table.seconds))
        note = (
            f"{len(table.rows)} prompts · {describe(table.settings)} · seed {table.settings.seed} · {times}"
        )
        return _table_frame(table), note, table

    run.click(
        on_compare,
        [
            adapters,
            include_base,
            source,
            pasted,
            example,
            upload,
            refs,
            rows_spec,
            preset,
            max_new,
            seed,
            *shared,
        ],
        [table_view, status, last_table],
        concurrency_id="model",
        concurrency_limit=1,
    )
    stop.click(_on_stop, None, None, queue=False)

    @user_errors
    def on_export(table: ComparisonTable | None, fmt: str) -> str:
        if table is None:
            raise PlaygroundError("Run a comparison first; then export its table.")
        return str(export_table(table, fmt))

    export_csv.click(lambda t: on_export(t, "csv"), last_table, exported)
    export_json.click(lambda t: on_export(t, "json"), last_table, exported)


def _table_frame(table: ComparisonTable) -> Any:
    import pandas as pd

    return pd.DataFrame(table.records(), columns=table.header())


def _prompt_items(
    source: str, pasted: str, data_path: str | None, refs_path: str | None, rows_text: str
) -> list[tuple[str, str, str | None]]:
    """(instruction, input, reference) per prompt, from pasted lines or rows of a data set."""
    if source == "paste":
        items = [(line.strip(), "", None) for line in (pasted or "").splitlines() if line.strip()]
    else:
        if not data_path:
            raise PlaygroundError("Pick a demo data set or upload a data file.")
        dataset = load_dataset(Path(data_path), references=refs_path or None)
        picked = parse_rows(rows_text, len(dataset))
        items = [
            (e.instruction, e.input, e.answers[0] if e.answers else None)
            for e in (dataset.examples[i] for i in picked)
        ]
    if not items:
        raise PlaygroundError("There are no prompts: paste some, one per line, or pick rows of a data set.")
    if len(items) > MAX_TABLE_PROMPTS:
        raise PlaygroundError(f"Compare at most {MAX_TABLE_PROMPTS} prompts at once (got {len(items)}).")
    return items
