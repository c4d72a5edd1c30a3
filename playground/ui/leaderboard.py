"""Leaderboard tab: start evaluations, compare runs (table + chart), inspect examples."""

from __future__ import annotations

import html
import json
import math
import re
import threading
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from playground.atomic import atomic_write_text
from playground.context import AppContext
from playground.data import describe
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.runner import METRIC_GROUPS, EvalConfig, evaluate
from playground.generation.settings import GREEDY
from playground.identity import display_owner
from playground.leaderboard import lower_is_better
from playground.models.adapters import attach_adapter, list_adapter_names, list_adapters
from playground.names import named_path, safe_file_name
from playground.paths import adapters_dir, exports_dir
from playground.prompts.fewshot import SELECTIONS, FewShotConfig
from playground.prompts.templates import TEMPLATES, PromptTemplate, get_template
from playground.ui.common import cancel_on_close, on_tab_shown, progress_callback, user_errors
from playground.ui.data_picker import UPLOAD_HEIGHT, build_data_picker, load_choice
from playground.ui.session import on_page_load, owner_of

_cancel_flags: dict[str, threading.Event] = {}
RUN_COLUMNS = [
    "id",
    "status",
    "model",
    "adapter",
    "strategy",
    "shots",
    "selection",
    "seed",
    "examples",
    "metrics",
    "owner",
]


def resolve_template(name: str, custom: str, system: str, loaded: Any) -> PromptTemplate:
    system_arg = system if system.strip() else None
    if name == "custom":
        if not custom.strip():
            raise PlaygroundError("Type the custom template, with {instruction} (and {input}) placeholders.")
        return get_template(custom, system_arg)
    if name == "chat":
        base = loaded.default_template
        return PromptTemplate(base.name, base.text, system_arg if system_arg is not None else base.system)
    return get_template(name, system_arg)


def metric_choices(board: Any, dataset: str | None) -> list[str]:
    names: set[str] = set()
    for run in board.runs(dataset_name=dataset, status="finished") if dataset else []:
        names.update(k for k, v in run.metrics.items() if v is not None)
    preferred = [
        "mean_perplexity",
        "corpus_perplexity",
        "accuracy",
        "rouge1",
        "rouge2",
        "rougeL",
        "bleu",
        "chrf",
    ]
    return [m for m in preferred if m in names] + sorted(names - set(preferred))


def bar_chart(rows: list[dict[str, Any]], metric: str) -> go.Figure:
    fig = go.Figure()
    if rows:
        labels = [
            f"#{r['rank']} {r['model']}{' + ' + r['adapter'] if r['adapter'] else ''} · {r['strategy']}"
            + (f" k={r['shots']}" if r["shots"] else "")
            for r in rows
        ]
        fig.add_bar(
            x=labels,
            y=[r[metric] for r in rows],
            error_y={"type": "data", "array": [r[f"{metric} std"] for r in rows], "visible": True},
            text=[f"{r[metric]:.3g} ± {r[f'{metric} std']:.2g} (n={r['runs']})" for r in rows],
            marker_color="#6366f1",
        )
    better = "lower is better" if lower_is_better(metric) else "higher is better"
    fig.update_layout(
        title=f"{metric} ({better}), mean ± std over seeds",
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 120},
        yaxis_title=metric,
    )
    return fig


def nll_heatmap(tokens: list[str] | None, nll: list[float | None] | None) -> str:
    """The reference output, each token shaded by how much it surprised the model."""
    if not tokens or not nll:
        return "<p><i>No per-token NLL for this example (run perplexity to get one).</i></p>"
    finite = [x for x in nll if x is not None and math.isfinite(x)]
    top = max(finite + [1e-6])
    spans = []
    for token, value in zip(tokens, nll, strict=False):
        if not token:
            continue  # a byte piece of a character that the next token completes
        v = value if value is not None and math.isfinite(value) else top
        alpha = min(1.0, v / top) if top > 0 else 0
        spans.append(
            f'<span class="nll-token" title="NLL {v:.2f}" style="background: rgba(239,68,68,{alpha:.2f});'
            f' padding:1px 0; border-radius:2px; white-space:pre-wrap">{html.escape(token)}</span>'
        )
    legend = (
        f"<div style='font-size:12px;color:#6b7280'>darker = more surprising; max NLL {top:.2f} nats</div>"
    )
    return f"<div id='nll-heatmap' style='line-height:1.9;font-size:15px'>{''.join(spans)}</div>{legend}"


def data_problem(exc: PlaygroundError) -> str:
    """A data file's problem as Markdown for the info line, its punctuation kept literal."""
    return "⚠️ **Cannot use this file.** " + re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~])", r"\\\1", str(exc))


def _describe_quietly(example: str | None) -> str:
    try:
        return describe(load_choice(example, None)) if example else ""
    except PlaygroundError as exc:
        return str(exc)


def decoding_text(decoding: str | dict | None) -> str:
    """A run's decoding in words ("greedy, 64 new tokens"); blank for scoring-only runs."""
    if isinstance(decoding, str):
        try:
            decoding = json.loads(decoding)
        except ValueError:
            return decoding
    if not decoding:
        return ""
    mode = (
        f"{decoding.get('num_beams')} beams"
        if (decoding.get("num_beams") or 1) > 1
        else f"T {decoding.get('temperature')}, top-p {decoding.get('top_p')}"
        if decoding.get("do_sample")
        else "greedy"
    )
    return f"{mode}, {decoding.get('max_new_tokens')} new tokens"


def readable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row as shown: no template hash (the CSV keeps it), decoding in words."""
    shown = {k: v for k, v in row.items() if k != "template"}
    shown["decoding"] = decoding_text(row.get("decoding"))
    return shown


def export_stem(dataset_name: str | None) -> str:
    """classical_chinese_test.json -> classical_chinese_test (not ...test.json.csv)."""
    name = (dataset_name or "all").replace("/", "_").replace("\\", "_")
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and suffix.lower() in ("json", "jsonl", "csv", "tsv", "txt") else name


def build_leaderboard_tab(ctx: AppContext) -> None:
    board = ctx.leaderboard
    with gr.Accordion("Evaluate", open=True):
        with gr.Row():
            with gr.Column():
                test_set = build_data_picker("Test set", "classical_chinese_test.json", elem_id="eval-data")
                references = gr.File(
                    label="Ground-truth file (optional, one answer per line)",
                    height=UPLOAD_HEIGHT,
                    elem_id="eval-refs",
                )
                mapping = gr.Textbox(
                    label="Column mapping (optional, when the shape is not detected)",
                    placeholder="instruction=question, input=context, output=answer, id=qid",
                    elem_id="eval-mapping",
                )
                data_info = gr.Markdown(_describe_quietly(test_set.example.value), elem_id="eval-data-info")
            with gr.Column():
                template = gr.Dropdown(
                    [t.name for t in TEMPLATES.values()] + ["custom"],
                    value="chat",
                    label="Template",
                    elem_id="eval-template",
                )
                custom = gr.Textbox(
                    label="Custom template", lines=2, placeholder="USER: {instruction} ASSISTANT:"
                )
                system = gr.Textbox(label="System text (optional)", lines=1)
                with gr.Row(equal_height=True):
                    adapter = gr.Dropdown(
                        ["(none)"],  # filled when the page loads
                        value="(none)",
                        label="Adapter (its training template is picked with it)",
                        elem_id="eval-adapter",
                        scale=4,
                    )
                    adapter_refresh = gr.Button("Refresh", size="sm", scale=1, elem_id="eval-adapter-refresh")
            with gr.Column():
                metrics = gr.CheckboxGroup(
                    list(METRIC_GROUPS), value=["perplexity"], label="Metrics", elem_id="eval-metrics"
                )
                shots = gr.Slider(0, 10, value=0, step=1, label="k in-context examples")
                selection = gr.Dropdown(list(SELECTIONS[:4]), value="first", label="How examples are picked")
                train_set = build_data_picker("Examples from", "", elem_id="eval-train", allow_none=True)
                seeds = gr.Textbox("0", label="Seeds (comma-separated)")
                limit = gr.Number(20, label="Limit (first N examples, 0 = all)", precision=0)
                max_new = gr.Slider(
                    8,
                    512,
                    value=64,
                    step=8,
                    label="Max new tokens (generation metrics)",
                    elem_id="eval-max-new",
                )
        with gr.Row():
            start = gr.Button("Start evaluation", variant="primary", elem_id="eval-start")
            cancel = gr.Button("Cancel", variant="stop", elem_id="eval-cancel")
        eval_status = gr.Markdown(elem_id="eval-status")

    gr.Markdown("### Leaderboard")
    with gr.Row():
        dataset = gr.Dropdown([], label="Data set", elem_id="lb-dataset", allow_custom_value=True)
        metric = gr.Dropdown([], label="Metric", elem_id="lb-metric", allow_custom_value=True)
        model_filter = gr.Dropdown(["(all)"], value="(all)", label="Model", allow_custom_value=True)
        strategy_filter = gr.Dropdown(
            ["(all)", "zero-shot", "k-shot", "cot"], value="(all)", label="Strategy"
        )
        refresh = gr.Button("Refresh", elem_id="lb-refresh")
    chart = gr.Plot(label="Comparison", elem_id="lb-chart")
    table = gr.Dataframe(
        # Not wrapped: short numbers and names, and wrapping squeezed the headers to a letter a line.
        label="Grouped by configuration (best first)",
        interactive=False,
        elem_id="lb-table",
        wrap=False,
    )
    runs = gr.Dataframe(
        headers=RUN_COLUMNS,
        label="Runs (click one for its examples)",
        interactive=False,
        elem_id="lb-runs",
        wrap=True,
    )
    with gr.Row():
        export = gr.Button("Export CSV", elem_id="lb-export")
        export_file = gr.File(label="CSV", interactive=False, height=UPLOAD_HEIGHT, elem_id="lb-export-file")
        delete_id = gr.Number(label="Run id to delete", precision=0)
        delete = gr.Button("Delete run", variant="stop", elem_id="lb-delete")
        publish = gr.Button("Publish its examples", elem_id="lb-publish")
    selected_run = gr.State(None)
    run_title = gr.Markdown(elem_id="lb-run-title")
    examples = gr.Dataframe(
        pd.DataFrame(columns=["idx", "prompt", "reference", "prediction"]),
        label="Per-example results (click one for its NLL heatmap)",
        interactive=False,
        wrap=True,
        elem_id="lb-examples",
    )
    heatmap = gr.HTML(elem_id="lb-heatmap")

    def _filtered_runs(ds: str | None, model_name: str, strategy: str) -> list:
        return board.runs(
            dataset_name=ds or None,
            model=None if model_name in (None, "(all)") else model_name,
            strategy=None if strategy in (None, "(all)") else strategy,
        )

    @user_errors
    def show(
        ds: str | None, metric_name: str | None, model_name: str, strategy: str, request: gr.Request = None
    ):
        viewer = owner_of(ctx, request) if request is not None else None
        datasets = board.datasets()
        if ds not in datasets:
            ds = datasets[-1] if datasets else None
        metrics_ = metric_choices(board, ds)
        if metric_name not in metrics_:
            metric_name = metrics_[0] if metrics_ else None
        records = _filtered_runs(ds, model_name, strategy)
        rows = board.leaderboard_table(ds, metric_name) if ds and metric_name else []
        keep = {r.id for r in records}
        rows = [r for r in rows if any(int(i) in keep for i in str(r["run ids"]).split(", ") if i)]
        run_rows = [
            [
                r.id,
                r.status,
                r.model,
                r.adapter or "",
                r.strategy,
                r.shots,
                r.selection or "",
                "" if r.seed is None else r.seed,
                r.n_examples,
                ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if v is not None) or r.message[:80],
                display_owner(r.owner, viewer) + (" (examples published)" if r.published else ""),
            ]
            for r in records
        ]
        models = ["(all)"] + sorted({r.model for r in board.runs(dataset_name=ds)} if ds else set())
        table_df = (
            pd.DataFrame([readable_row(r) for r in rows]).round(4)
            if rows
            else pd.DataFrame({"": ["No finished runs yet."]})
        )
        return (
            gr.update(choices=datasets, value=ds),
            gr.update(choices=metrics_, value=metric_name),
            gr.update(choices=models),
            bar_chart(rows, metric_name) if metric_name else bar_chart([], "metric"),
            table_df,
            pd.DataFrame(run_rows, columns=RUN_COLUMNS),
        )

    board_outputs = [dataset, metric, model_filter, chart, table, runs]
    board_inputs = [dataset, metric, model_filter, strategy_filter]

    @user_errors
    def on_data_change(example: str | None, upload: str | None, refs: str | None, mapping: str = "") -> str:
        if not example and not upload:
            return ""
        try:
            return describe(load_choice(example, upload, refs, mapping=mapping))
        except PlaygroundError as exc:
            # Issue 8: said here, not raised: gradio 6 shows only a red "Error" badge, without the
            # message, for an error in an un-queued event such as this one.
            return data_problem(exc)

    data_inputs = [*test_set.inputs, references, mapping]
    for comp in (*test_set.inputs, references):
        comp.change(on_data_change, data_inputs, data_info)
    # Typed text is read when done (Enter or leaving the box), not at every keystroke.
    mapping.submit(on_data_change, data_inputs, data_info)
    mapping.blur(on_data_change, data_inputs, data_info)

    @user_errors
    def run_eval(
        ex,
        up,
        refs,
        mapping_text,
        tmpl,
        custom_text,
        system_text,
        adapter_name,
        metric_names,
        k,
        sel,
        train_ex,
        train_up,
        seeds_text,
        limit_n,
        max_new_tokens,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        if not metric_names:
            raise PlaygroundError("Tick at least one metric.")
        try:
            seed_list = tuple(int(s) for s in str(seeds_text).replace(" ", "").split(",") if s)
        except ValueError as exc:
            raise PlaygroundError(
                f"Seeds must be whole numbers separated by commas, not {seeds_text!r}."
            ) from exc
        dataset_ = load_choice(ex, up, refs, "test set", mapping=mapping_text)
        pool = (
            load_choice(train_ex, train_up, what="training set").examples if (train_ex or train_up) else None
        )
        config = EvalConfig(
            metrics=tuple(metric_names),
            fewshot=FewShotConfig(k=int(k), selection=sel),
            seeds=seed_list or (0,),
            limit=int(limit_n) if limit_n else None,
            decoding=GREEDY.with_(max_new_tokens=int(max_new_tokens)),
        ).validate()
        flag = threading.Event()
        _cancel_flags[request.session_hash or "default"] = flag
        with ctx.models.use() as loaded:
            template_obj = resolve_template(tmpl, custom_text, system_text, loaded)
            adapter_ = None
            if adapter_name and adapter_name != "(none)":
                adapter_ = attach_adapter(loaded, named_path(adapters_dir(), adapter_name, "adapter"))
            try:
                outcomes = evaluate(
                    loaded,
                    dataset_,
                    template_obj,
                    config,
                    pool=pool,
                    leaderboard=board.as_owner(owner_of(ctx, request)),
                    adapter=adapter_,
                    progress=progress_callback(progress),
                    should_stop=flag.is_set,
                )
            except Cancelled:
                return (
                    "**Cancelled.** Finished runs are kept; the cancelled one is marked as such.",
                    dataset_.name,
                )
        lines = [
            f"**Done:** {len(outcomes)} run(s) on {dataset_.name} ({len(outcomes[0].examples)} examples)."
        ]
        for o in outcomes:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in o.metrics.items())
            lines.append(f"- run #{o.run_id}, seed {o.seed}: {shown} ({o.seconds:.1f} s)")
        return "\n".join(lines), dataset_.name

    def on_cancel(request: gr.Request) -> str:
        flag = _cancel_flags.get(request.session_hash or "default")
        if flag:
            flag.set()
        return "Cancelling after the current batch..."

    start.click(
        run_eval,
        [
            *test_set.inputs,
            references,
            mapping,
            template,
            custom,
            system,
            adapter,
            metrics,
            shots,
            selection,
            *train_set.inputs,
            seeds,
            limit,
            max_new,
        ],
        [eval_status, dataset],
        concurrency_id="model",
        concurrency_limit=1,
    ).then(show, board_inputs, board_outputs)
    cancel.click(on_cancel, None, eval_status, queue=False)
    cancel_on_close(_cancel_flags)

    for trigger in (
        refresh.click,
        dataset.change,
        metric.change,
        model_filter.change,
        strategy_filter.change,
    ):
        trigger(show, board_inputs, board_outputs)

    @user_errors
    def on_run_select(table_value: pd.DataFrame, evt: gr.SelectData, request: gr.Request):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        run_id = int(table_value.iloc[row]["id"])
        record = board.run(run_id)
        try:
            rows = board.examples(run_id, viewer=owner_of(ctx, request))
        except PlaygroundError as exc:
            return run_id, f"**Run #{record.id}** · {exc}", pd.DataFrame(), ""
        df = pd.DataFrame(
            [
                {
                    "idx": r.idx,
                    "prompt": r.prompt[-300:],
                    "reference": r.reference,
                    "prediction": r.prediction,
                    **{k: round(v, 4) for k, v in r.metrics.items() if isinstance(v, (int, float))},
                }
                for r in rows
            ]
        )
        title = (
            f"**Run #{record.id}** · {record.model} · {record.strategy}"
            f"{f' k={record.shots}' if record.shots else ''} · {record.status}"
            f"{' · ' + record.message if record.message else ''}"
        )
        first = rows[0] if rows else None
        return run_id, title, df, nll_heatmap(first.tokens, first.nll) if first else ""

    runs.select(on_run_select, runs, [selected_run, run_title, examples, heatmap])

    @user_errors
    def on_example_select(run_id: int | None, evt: gr.SelectData, request: gr.Request) -> str:
        if run_id is None:
            return ""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        chosen = board.examples(run_id, viewer=owner_of(ctx, request))[row]
        return nll_heatmap(chosen.tokens, chosen.nll)

    examples.select(on_example_select, selected_run, heatmap)

    @user_errors
    def on_export(ds: str | None) -> str:
        path = named_path(
            exports_dir(), f"leaderboard-{safe_file_name(export_stem(ds), 'data')}", "export", ".csv"
        )
        atomic_write_text(path, board.to_csv(ds or None))
        return str(path)

    export.click(on_export, dataset, export_file)

    @user_errors
    def on_delete(run_id: float | None, ds, metric_name, model_name, strategy, request: gr.Request):
        board.delete_run(_run_id(run_id, "delete"), by=owner_of(ctx, request))
        gr.Info(f"Deleted run #{int(run_id)}.")
        return show(ds, metric_name, model_name, strategy, request)

    delete.click(on_delete, [delete_id, *board_inputs], board_outputs)

    @user_errors
    def on_publish(run_id: float | None, ds, metric_name, model_name, strategy, request: gr.Request):
        board.publish_run(_run_id(run_id, "publish"), by=owner_of(ctx, request))
        gr.Info(f"Everyone can now read the examples of run #{int(run_id)}.")
        return show(ds, metric_name, model_name, strategy, request)

    publish.click(on_publish, [delete_id, *board_inputs], board_outputs)

    def on_page(request: gr.Request):
        return (
            gr.update(choices=["(none)"] + list_adapter_names()),
            *show(None, None, "(all)", "(all)", request),
        )

    on_page_load(on_page, None, [adapter, *board_outputs])

    def adapter_choices() -> Any:
        return gr.update(choices=["(none)"] + list_adapter_names())

    def on_adapter(name: str | None):
        """An adapter is scored with the template it was trained with."""
        info = next((a for a in list_adapters() if a.name == name), None)
        if info is None:
            return gr.skip(), gr.skip(), gr.skip()
        chosen = info.settings.get("template") or "chat"
        named = chosen in TEMPLATES
        return (
            chosen if named else "custom",
            gr.skip() if named else chosen,
            info.settings.get("system") or "",
        )

    adapter.input(on_adapter, adapter, [template, custom, system], queue=False)
    adapter_refresh.click(adapter_choices, None, adapter, queue=False)
    on_tab_shown(adapter_choices, None, [adapter])
    on_tab_shown(show, board_inputs, board_outputs)


def _run_id(value: float | None, action: str) -> int:
    if value is None or not math.isfinite(value) or not 1 <= value < 2**31:
        raise PlaygroundError(f"Type the id of the run to {action} (the first column of the runs table).")
    return int(value)
