"""Leaderboard tab: start evaluations, compare runs (table + chart), inspect examples.

`layout` builds the sections, `handlers` holds what the events call, and this module connects them.
"""

from __future__ import annotations

from playground.context import AppContext
from playground.ui.common import on_tab_shown
from playground.ui.leaderboard import handlers as h
from playground.ui.leaderboard.arena_ratings import build_arena_ratings
from playground.ui.leaderboard.layout import (
    Board,
    EvaluateForm,
    RunDetail,
    build_board,
    build_evaluate_form,
    build_run_detail,
)
from playground.ui.session import on_page_load
from playground.ui.session_stop import session_runs_state

__all__ = ["build_leaderboard_tab"]


def build_leaderboard_tab(ctx: AppContext) -> None:
    handlers = h.LeaderboardHandlers(ctx)
    form = build_evaluate_form(h.initial_data_info("classical_chinese_test.json"))
    board = build_board()
    detail = build_run_detail()
    build_arena_ratings(ctx)
    _wire_form(handlers, form, board)
    _wire_board(handlers, form, board, detail)


def _wire_form(handlers: h.LeaderboardHandlers, form: EvaluateForm, board: Board) -> None:
    data, prompt = form.data, form.prompt
    for comp in (*data.test_set.inputs, data.references):
        comp.change(h.on_data_change, data.inputs, data.info)
    # Typed text is read when done (Enter or leaving the box), not at every keystroke.
    data.mapping.submit(h.on_data_change, data.inputs, data.info)
    data.mapping.blur(h.on_data_change, data.inputs, data.info)
    runs = session_runs_state()
    form.start.click(
        handlers.run_eval,
        [*form.inputs, runs],
        [form.status, board.dataset],
        concurrency_id="model",
        concurrency_limit=1,
    ).then(handlers.show, board.inputs, board.outputs)
    form.cancel.click(h.on_cancel, runs, form.status, queue=False)
    prompt.adapter.input(
        h.on_adapter, prompt.adapter, [prompt.template, prompt.custom, prompt.system], queue=False
    )
    prompt.adapter_refresh.click(h.adapter_choices, None, prompt.adapter, queue=False)
    on_tab_shown(h.adapter_choices, None, [prompt.adapter])


def _wire_board(handlers: h.LeaderboardHandlers, form: EvaluateForm, board: Board, detail: RunDetail) -> None:
    for trigger in (
        board.refresh.click,
        board.dataset.change,
        board.metric.change,
        board.model_filter.change,
        board.strategy_filter.change,
    ):
        trigger(handlers.show, board.inputs, board.outputs)
    adapter_diff = {
        "fn": handlers.on_adapter_diff,
        "inputs": [detail.selected_run, detail.selected_example],
        "outputs": [detail.adapter_note, detail.adapter_diff],
        "concurrency_id": "model",
        "concurrency_limit": 1,
    }
    board.runs.select(
        handlers.on_run_select,
        board.runs,
        [detail.selected_run, detail.title, detail.examples, detail.heatmap, detail.selected_example],
    ).success(**adapter_diff)
    detail.examples.select(
        handlers.on_example_select, detail.selected_run, [detail.heatmap, detail.selected_example]
    ).success(**adapter_diff)
    detail.export.click(handlers.on_export, board.dataset, detail.export_file)
    detail.export_run.click(handlers.on_export_run, detail.selected_run, detail.export_file)
    detail.delete.click(handlers.on_delete, [detail.run_id, *board.inputs], board.outputs)
    detail.publish.click(handlers.on_publish, [detail.run_id, *board.inputs], board.outputs)
    on_page_load(handlers.on_page, None, [form.prompt.adapter, *board.outputs])
    on_tab_shown(handlers.show, board.inputs, board.outputs)
