"""Prompt lab tab: build a few-shot / chain-of-thought prompt, preview it, try it, sweep k over a test set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.data import dataset_summary
from playground.data_types import Dataset
from playground.errors import PlaygroundError
from playground.evaluation.runner import METRIC_GROUPS, EvalConfig
from playground.evaluation.sweep import run_sweep
from playground.generation import GREEDY, stream_generate
from playground.number_lists import parse_number_list
from playground.prompts.fewshot import FewShotConfig, list_recipes
from playground.prompts.templates import TEMPLATES
from playground.ui.common import GENERATION_EVENT, cancel_on_close, progress_callback, user_errors
from playground.ui.data_picker import UPLOAD_HEIGHT, build_data_picker, load_choice
from playground.ui.prompt_lab_controls import LabControls, load_lab_recipe, save_lab_recipe
from playground.ui.prompt_lab_parts import (
    build_preview,
    effective_pool,
    id_choices,
    matching_train,
    model_line,
    pool_frame,
    query_choices,
    query_line,
    summary_frame,
    sweep_chart,
    try_stop_strings,
)
from playground.ui.session import on_page_load, owner_of

DEFAULT_TEST = "classical_chinese_test.json"
EXAMPLE_FORMATS = {
    "USER / ASSISTANT": FewShotConfig().example_template,
    "numbered list": "{index}. {instruction}{input}\nAnswer: {output}",
    "Q: / A:": "Q: {instruction}{input}\nA: {output}",
}
SEPARATORS = [("new line", "\n"), ("blank line", "\n\n"), ("space", " ")]
SELECTION_CHOICES = [
    ("first k", "first"),
    ("last k", "last"),
    ("random k (seed)", "random"),
    ("most similar to the question (BM25)", "similar"),
    ("picked by hand", "manual"),
]
_cancel_flags: dict[str, threading.Event] = {}
_stop_flags: dict[str, threading.Event] = {}


def _load_quietly(example: str | None, what: str) -> Dataset | None:
    try:
        return load_choice(example, None, what=what) if example else None
    except PlaygroundError:
        return None


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


# --------------------------------------------------------------------------- layout


def build_prompt_lab_tab(ctx: AppContext) -> None:
    default_train = matching_train(DEFAULT_TEST) or ""
    test0 = _load_quietly(DEFAULT_TEST, "test set")
    train0 = _load_quietly(default_train, "training set")
    test_state = gr.State(test0)
    pool_state = gr.State(train0)
    sweep_state = gr.State(None)
    defaults = LabControls()

    model_md = gr.Markdown(model_line(ctx), elem_id="lab-model")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Accordion("Data", open=True):
                test_set = build_data_picker("Test set", DEFAULT_TEST, elem_id="lab-test")
                references = gr.File(
                    label="Ground-truth file (optional, one answer per line)",
                    height=UPLOAD_HEIGHT,
                    elem_id="lab-refs",
                )
                test_info = gr.Markdown(dataset_summary(test0) if test0 else "", elem_id="lab-test-info")
                train_set = build_data_picker(
                    "Examples from", default_train, elem_id="lab-train", allow_none=True
                )
                gr.Markdown(
                    "Without a training set the examples come from the test set (never the question)."
                )
            with gr.Accordion("Prompt", open=True):
                template = gr.Dropdown(
                    [(f"{t.name}: {t.notes}", t.name) for t in TEMPLATES.values()]
                    + [("custom (below)", "custom")],
                    value=defaults.template,
                    label="Template",
                    elem_id="lab-template",
                )
                custom = gr.Textbox(
                    label="Custom template: {system} {examples} {instruction} {input}",
                    lines=2,
                    placeholder="{system}{examples}USER: {instruction}{input} ASSISTANT:",
                    visible=False,
                    elem_id="lab-custom",
                )
                system = gr.Textbox(
                    label="System text (blank = the template's own)", lines=2, elem_id="lab-system"
                )
                suffix = gr.Textbox(
                    label="Prompt variant: sentence added to the system text",
                    placeholder="This is very important to my career.",
                    elem_id="lab-suffix",
                )
            with gr.Accordion("Examples", open=True):
                with gr.Row():
                    k = gr.Slider(
                        0, 10, value=defaults.k, step=1, label="k in-context examples", elem_id="lab-k"
                    )
                    seed = gr.Number(defaults.seed, label="Seed (random k)", precision=0, elem_id="lab-seed")
                selection = gr.Radio(
                    SELECTION_CHOICES,
                    value=defaults.selection,
                    label="Which examples",
                    elem_id="lab-selection",
                )
                with gr.Row():
                    preset = gr.Dropdown(
                        list(EXAMPLE_FORMATS),
                        value=None,
                        label="Example format preset",
                        elem_id="lab-format-preset",
                    )
                    separator = gr.Dropdown(
                        SEPARATORS,
                        value=defaults.separator,
                        label="Between examples",
                        allow_custom_value=True,
                        elem_id="lab-separator",
                    )
                example_format = gr.Textbox(
                    defaults.example_template,
                    label="Example format: {index} {instruction} {input} {output}",
                    lines=2,
                    elem_id="lab-example-format",
                )
                gr.Markdown(
                    "With the model's chat template each example is a user turn and an assistant reply, so "
                    "the example format applies to raw templates. There `{examples}` marks where the block "
                    "goes; without it the block comes first."
                )
                with gr.Column(visible=False) as manual_box:
                    manual_ids = gr.Dropdown(
                        id_choices(effective_pool(test0, train0)),
                        value=[],
                        multiselect=True,
                        allow_custom_value=True,
                        label="Hand-picked example ids, in order (or click rows below)",
                        elem_id="lab-manual-ids",
                    )
                    pool_table = gr.Dataframe(
                        pool_frame(effective_pool(test0, train0)),
                        label="Training set (click a row to add it)",
                        interactive=False,
                        wrap=True,
                        max_height=320,
                        elem_id="lab-pool-table",
                    )
            with gr.Accordion("Chain of thought", open=False):
                cot = gr.Checkbox(defaults.cot, label="Chain of thought", elem_id="lab-cot")
                trigger = gr.Textbox(
                    defaults.cot_trigger, label="Trigger (ends the prompt)", elem_id="lab-trigger"
                )
                worked = gr.Textbox(
                    label="Worked example (optional): a question, the trigger, then the reasoning and answer",
                    lines=4,
                    elem_id="lab-worked",
                )
        with gr.Column(scale=1):
            query = gr.Dropdown(
                query_choices(test0), value=0 if test0 else None, label="Test question", elem_id="lab-query"
            )
            query_md = gr.Markdown(query_line(test0, 0), elem_id="lab-query-info")
            preview = gr.Textbox(
                label="Exact text sent to the model",
                lines=14,
                max_lines=40,
                interactive=False,
                elem_id="lab-preview",
            )
            preview_info = gr.Markdown(elem_id="lab-preview-info")
            max_new = gr.Slider(1, 1024, value=128, step=1, label="Max new tokens", elem_id="lab-max-new")
            with gr.Row():
                try_btn = gr.Button("Try on this question", variant="primary", elem_id="lab-try")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="lab-stop")
            answer = gr.Textbox(label="Answer (greedy)", lines=6, interactive=False, elem_id="lab-answer")
            try_stats = gr.Markdown(elem_id="lab-try-stats")
            with gr.Accordion("Recipes", open=False):
                with gr.Row():
                    recipe_name = gr.Textbox(label="Recipe name", elem_id="lab-recipe-name", scale=2)
                    save_btn = gr.Button("Save", elem_id="lab-recipe-save", scale=1)
                with gr.Row():
                    recipes = gr.Dropdown(
                        [], value=None, label="Saved recipes", elem_id="lab-recipes", scale=2
                    )
                    load_btn = gr.Button("Load", elem_id="lab-recipe-load", scale=1)
                recipe_status = gr.Markdown(elem_id="lab-recipe-status")

    with gr.Accordion("Evaluate: zero-shot and each k over the test set", open=True):
        with gr.Row():
            metrics = gr.CheckboxGroup(
                list(METRIC_GROUPS), value=["perplexity"], label="Metrics", elem_id="lab-metrics"
            )
            ks = gr.Textbox(
                "1, 2, 3", label="k values (zero-shot always runs; blank = the k above)", elem_id="lab-ks"
            )
            seeds = gr.Textbox("0, 1, 2", label="Seeds (random k only)", elem_id="lab-seeds")
            limit = gr.Number(
                20, label="Limit (first N questions, 0 = all)", precision=0, elem_id="lab-limit"
            )
        with gr.Row():
            start = gr.Button("Evaluate", variant="primary", elem_id="lab-eval")
            cancel = gr.Button("Cancel", variant="stop", elem_id="lab-cancel")
        eval_status = gr.Markdown(elem_id="lab-eval-status")
        summary = gr.Dataframe(
            summary_frame(None),
            label="Per k: mean and std over seeds",
            interactive=False,
            elem_id="lab-summary",
        )
        chart_metric = gr.Dropdown(
            [], label="Chart metric", elem_id="lab-chart-metric", allow_custom_value=True
        )
        chart = gr.Plot(sweep_chart(None, None), elem_id="lab-chart")

    by_field = {
        "template": template,
        "custom": custom,
        "system": system,
        "system_suffix": suffix,
        "example_template": example_format,
        "separator": separator,
        "k": k,
        "selection": selection,
        "seed": seed,
        "manual_ids": manual_ids,
        "cot": cot,
        "cot_trigger": trigger,
        "cot_example": worked,
    }
    controls = [by_field[f.name] for f in fields(LabControls)]

    # --- live preview: cheap, no model lock (the tokenizer is only read)
    @user_errors
    def on_preview(*args: Any) -> tuple[str, str, str, str]:
        *values, test, pool, index, new_tokens = args
        line = query_line(test, index)
        try:
            text, info = build_preview(
                LabControls.from_values(*values), test, pool, index, ctx.models.current, int(new_tokens)
            )
        except PlaygroundError as exc:
            return "", f"⚠️ {exc}", line, model_line(ctx)
        return text, info, line, model_line(ctx)

    preview_inputs = [*controls, test_state, pool_state, query, max_new]
    preview_outputs = [preview, preview_info, query_md, model_md]
    preview_run: dict[str, Any] = dict(
        fn=on_preview, inputs=preview_inputs, outputs=preview_outputs, queue=False, show_progress="hidden"
    )
    # No triggers: on page load and on every change of an input. A State set by an unqueued event
    # fires no change event in the browser, so the data handlers below chain the preview themselves.
    gr.on(None, **preview_run)

    template.change(lambda t: gr.update(visible=t == "custom"), template, custom, queue=False)
    selection.change(lambda s: gr.update(visible=s == "manual"), selection, manual_box, queue=False)
    preset.change(
        lambda p: EXAMPLE_FORMATS[p] if p in EXAMPLE_FORMATS else gr.update(),
        preset,
        example_format,
        queue=False,
    )

    # --- data
    @user_errors
    def on_test(example: str | None, upload: str | None, refs: str | None):
        test = load_choice(example, upload, refs, "test set") if (example or upload) else None
        train = matching_train(example) if example and not upload else None
        return (
            test,
            gr.update(choices=query_choices(test), value=0 if test else None),
            dataset_summary(test) if test else "",
            gr.update(value=train) if train else gr.update(),
        )

    @user_errors
    def on_train(example: str | None, upload: str | None) -> Dataset | None:
        return load_choice(example, upload, what="training set") if (example or upload) else None

    def on_pool(test: Dataset | None, pool: Dataset | None):
        examples = effective_pool(test, pool)
        return pool_frame(examples), gr.update(choices=id_choices(examples))

    for comp in (*test_set.inputs, references):
        comp.change(
            on_test,
            [*test_set.inputs, references],
            [test_state, query, test_info, train_set.example],
        ).then(on_pool, [test_state, pool_state], [pool_table, manual_ids], queue=False).then(**preview_run)
    for comp in train_set.inputs:
        comp.change(on_train, train_set.inputs, pool_state).then(
            on_pool, [test_state, pool_state], [pool_table, manual_ids], queue=False
        ).then(**preview_run)

    def on_pick(chosen: list[str] | None, evt: gr.SelectData) -> list[str]:
        row = evt.row_value or []
        chosen = list(chosen or [])
        if row and str(row[0]) not in chosen:
            chosen.append(str(row[0]))
        return chosen

    pool_table.select(on_pick, manual_ids, manual_ids, queue=False)

    # Handlers that need the request take their inputs as a set (a dict per call): gradio only
    # passes gr.Request to positional parameters, so it cannot follow *args.
    def controls_of(data: dict) -> LabControls:
        return LabControls.from_values(*(data[c] for c in controls))

    # --- try on one question (streamed)
    @user_errors
    def on_try(data: dict, request: gr.Request) -> Iterator[tuple[str, str, str, str]]:
        c = controls_of(data)
        test, pool, index, new_tokens = data[test_state], data[pool_state], data[query], data[max_new]
        flag = threading.Event()
        _stop_flags[_session(request)] = flag
        with ctx.models.use() as loaded:
            text, info = build_preview(c, test, pool, index, loaded, int(new_tokens))
            stops = try_stop_strings(c, loaded)
            settings = GREEDY.with_(max_new_tokens=int(new_tokens), stop=stops)
            ends_at = f" · ends at {', '.join(repr(s) for s in stops)}" if stops else ""
            yield "", "starting…", text, info
            for update in stream_generate(loaded, text, settings, flag):
                yield update.text, update.stats_line() + ends_at, text, info

    def on_stop(request: gr.Request) -> None:
        flag = _stop_flags.get(_session(request))
        if flag:
            flag.set()

    try_btn.click(
        on_try,
        set(preview_inputs),
        [answer, try_stats, preview, preview_info],
        **GENERATION_EVENT,
    )
    stop_btn.click(on_stop, None, None, queue=False)
    cancel_on_close(_stop_flags)

    # --- evaluate: the k sweep
    @user_errors
    def on_evaluate(data: dict, request: gr.Request, progress: gr.Progress = gr.Progress()):
        c = controls_of(data)
        test, pool, metric_names = data[test_state], data[pool_state], data[metrics]
        ks_text, seeds_text, limit_n, new_tokens = data[ks], data[seeds], data[limit], data[max_new]
        if test is None:
            raise PlaygroundError("Pick a test set first.")
        if not metric_names:
            raise PlaygroundError("Tick at least one metric.")
        if c.selection == "manual" and not c.manual_ids:
            raise PlaygroundError("Pick the examples by hand first (or choose another selection).")
        k_values = parse_number_list(ks_text, "k values") or [c.k]
        base = EvalConfig(
            metrics=tuple(metric_names),
            fewshot=c.fewshot(),
            seeds=tuple(parse_number_list(seeds_text, "Seeds")) or (0,),
            limit=int(limit_n) if limit_n else None,
            decoding=GREEDY.with_(max_new_tokens=int(new_tokens)),
        ).validate()
        flag = threading.Event()
        _cancel_flags[_session(request)] = flag
        with ctx.models.use() as loaded:
            result = run_sweep(
                loaded,
                test,
                c.resolve(loaded),
                base,
                k_values,
                pool=pool.examples if pool is not None else None,
                leaderboard=ctx.leaderboard,
                progress=progress_callback(progress),
                should_stop=flag.is_set,
            )
        n_runs = sum(len(p.runs) for p in result.points)
        head = "**Cancelled.** Finished runs are kept" if result.cancelled else "**Done:**"
        status = (
            f"{head} {n_runs} run(s) on {result.dataset_name} ({result.n_examples} questions each), "
            "stored on the leaderboard."
        )
        metric = result.primary_metric
        return (
            status,
            summary_frame(result),
            sweep_chart(result, metric),
            gr.update(choices=result.metrics, value=metric),
            result,
        )

    def on_cancel(request: gr.Request) -> str:
        flag = _cancel_flags.get(_session(request))
        if flag:
            flag.set()
        return "Cancelling after the current batch…"

    start.click(
        on_evaluate,
        {*controls, test_state, pool_state, metrics, ks, seeds, limit, max_new},
        [eval_status, summary, chart, chart_metric, sweep_state],
        concurrency_id="model",
        concurrency_limit=1,
    )
    cancel.click(on_cancel, None, eval_status, queue=False)
    chart_metric.change(sweep_chart, [sweep_state, chart_metric], chart, queue=False)

    # --- recipes
    @user_errors
    def on_save(request: gr.Request, name: str, *values: Any):
        saved = save_lab_recipe(name, LabControls.from_values(*values), owner_of(ctx, request))
        return f"Saved recipe **{saved}**.", gr.update(choices=list_recipes(), value=saved)

    @user_errors
    def on_load(name: str | None):
        loaded_controls = load_lab_recipe(name)
        return [*loaded_controls.values(), f"Loaded recipe **{name}**."]

    save_btn.click(on_save, [recipe_name, *controls], [recipe_status, recipes])
    load_btn.click(on_load, recipes, [*controls, recipe_status])
    recipes.focus(lambda: gr.update(choices=list_recipes()), None, recipes, queue=False)
    on_page_load(lambda: gr.update(choices=list_recipes()), None, recipes)
