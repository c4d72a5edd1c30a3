"""What the Training tab's buttons, tables and timer do; each method is one event's handler."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.evaluation.compare import compare_with_base
from playground.evaluation.runner import EvalConfig
from playground.models.sources import check_model_source
from playground.paths import offer_download
from playground.prompts.templates import training_template
from playground.training import (
    TrainingConfig,
    export,
    format_example,
    list_adapters,
    preflight,
    render_masked,
)
from playground.training.merge_task import start_merge
from playground.training.presets import preset_values
from playground.training.progress import TrainingProgress
from playground.ui.common import user_errors
from playground.ui.data_picker import load_choice, resolve_path
from playground.ui.i18n import language_of, t, tr
from playground.ui.session import owner_of
from playground.ui.session_stop import SessionRuns
from playground.ui.training.form import form_settings, form_updates
from playground.ui.training.layout import NO_ADAPTER
from playground.ui.training.text import (
    adapters_frame,
    curves_figure,
    jobs_frame,
    masked_html,
    progress_markdown,
)


def adapter_choices() -> list[Any]:
    return [(t("training.none"), NO_ADAPTER)] + [a.name for a in list_adapters()]


def apply_preset(name: str) -> list[Any]:
    return form_updates(preset_values(name))


def _clicked_row(table: pd.DataFrame, evt: gr.SelectData) -> str:
    """The first column (the id or name) of the clicked row."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return str(table.iloc[row, 0])


def on_job_select(table: pd.DataFrame, evt: gr.SelectData) -> tuple[Any, ...]:
    chosen = _clicked_row(table, evt)
    if not chosen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return chosen, 0, TrainingProgress(), gr.Timer(active=True)


def on_adapter_select(table: pd.DataFrame, evt: gr.SelectData, request: gr.Request) -> Any:
    name = _clicked_row(table, evt)
    info = next((a for a in list_adapters() if a.name == name), None)
    if info is None:
        return gr.skip(), gr.skip()
    progress = TrainingProgress.from_history(info.loss_history, info.eval_history)
    lang = language_of(request)
    return name, curves_figure(progress, tr(request, "training.chart.adapter", name=name), lang)


class TrainingHandlers:
    """Handlers that need the app's context (gradio reads a bound method's annotations for gr.Request)."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.jobs = ctx.jobs

    def config_from_form(
        self,
        model_name: str,
        ex: str | None,
        up: str | None,
        eval_ex: str | None,
        eval_up: str | None,
        template_name: str,
        output_name: str | None,
        resume_name: str | None,
        *values: Any,
        keep_for: str | None = None,
        request: gr.Request | None = None,
    ) -> TrainingConfig:
        data_path = resolve_path(ex, up, keep_for)
        if data_path is None:
            raise PlaygroundError(tr(request, "training.error.no_data"))
        if self.ctx.deployment.shared:
            model_name = check_model_source(model_name)
        eval_path = resolve_path(eval_ex, eval_up, keep_for)
        return TrainingConfig.from_dict(
            {
                "model": model_name.strip(),
                "data": str(data_path),
                "eval_data": str(eval_path) if eval_path else "",
                "template": template_name,
                "output": f"adapters/{output_name.strip()}" if output_name and output_name.strip() else "",
                "resume_from": "" if resume_name in (None, NO_ADAPTER) else resume_name,
                **form_settings(values),
            }
        )

    @user_errors
    def on_preview(self, request: gr.Request, *inputs: Any) -> str:
        config = self.config_from_form(*inputs, request=request).resolved()
        prepared = preflight(config)
        with self.ctx.models.use() as loaded:
            if loaded.name != config.model and loaded.source != config.model:
                gr.Info(tr(request, "training.preview.tokenizer", model=loaded.name))
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
        head = tr(
            request,
            "training.preview.head",
            n_train=len(prepared.train),
            n_eval=len(prepared.eval),
            n_tokens=n_tokens,
            n_trained=formatted.n_trained,
        )
        return f"<p>{head}</p>" + masked_html(pieces, language_of(request))

    def jobs_frame(self, request: gr.Request | None) -> pd.DataFrame:
        viewer = owner_of(self.ctx, request) if request is not None else None
        return jobs_frame(self.jobs, viewer, language_of(request))

    @user_errors
    def on_start(self, request: gr.Request, *inputs: Any) -> tuple[Any, ...]:
        owner = owner_of(self.ctx, request)
        config = self.config_from_form(*inputs, keep_for=owner.id, request=request)
        new_id = self.jobs.submit(config, owner=owner)
        gr.Info(tr(request, "training.queued_info", id=new_id))
        return (
            new_id,
            0,
            TrainingProgress(),
            tr(request, "training.status.queued_line", id=new_id),
            curves_figure(TrainingProgress(), lang=language_of(request)),
            self.jobs_frame(request),
            gr.Timer(active=True),
        )

    def poll(
        self, current: str | None, since: int, progress: TrainingProgress | None, request: gr.Request
    ) -> tuple[Any, ...]:
        if not current:
            return since, progress, *[gr.skip()] * 7
        lang = language_of(request)
        job = self.jobs.job(current)
        new, since = job.events(since)
        progress = (progress or TrainingProgress()).update_all(new).set_status(job.status())
        done = not progress.active
        return (
            since,
            progress,
            progress_markdown(progress, lang),
            curves_figure(progress, tr(request, "training.chart.job", id=current), lang)
            if new or done
            else gr.skip(),
            job.log_tail(12),
            self.jobs_frame(request),
            adapters_frame(lang) if done else gr.skip(),
            gr.update(choices=adapter_choices()) if done else gr.skip(),
            gr.Timer(active=not done),
        )

    @user_errors
    def on_stop(self, current: str | None, request: gr.Request) -> str:
        if not current:
            raise PlaygroundError(tr(request, "training.error.no_job"))
        self.jobs.stop(current, by=owner_of(self.ctx, request))
        return tr(request, "training.status.stopping", id=current)

    @user_errors
    def on_resume(self, current: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not current:
            raise PlaygroundError(tr(request, "training.error.select_job"))
        self.jobs.resume(current, by=owner_of(self.ctx, request))
        return (
            0,
            TrainingProgress(),
            tr(request, "training.status.requeued", id=current),
            gr.Timer(active=True),
        )

    def on_refresh(self, request: gr.Request) -> tuple[Any, ...]:
        lang = language_of(request)
        return self.jobs_frame(request), adapters_frame(lang), gr.update(choices=adapter_choices())

    @user_errors
    def on_evaluate(
        self,
        name: str | None,
        ex: str | None,
        up: str | None,
        refs: str | None,
        limit: float | None,
        runs: SessionRuns,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio reads this default to inject the bar
    ) -> str:
        if not name:
            raise PlaygroundError(tr(request, "training.error.click_adapter"))
        info = next((a for a in list_adapters() if a.name == name), None)
        if info is None:
            raise PlaygroundError(tr(request, "training.error.adapter_gone", name=name))
        dataset = load_choice(ex, up, refs, what="test set")
        config = EvalConfig(metrics=("perplexity",), limit=int(limit) if limit else None)
        with runs.run() as stop, self.ctx.models.use() as loaded:
            result = compare_with_base(
                loaded,
                dataset,
                info,
                config,
                leaderboard=self.ctx.leaderboard,
                progress=lambda f, d: progress(f, desc=d),
                should_stop=stop.is_set,
                labels=(
                    tr(request, "training.evaluate.base"),
                    tr(request, "training.evaluate.adapter", name=name),
                ),
            )
        lines = [tr(request, "training.evaluate.head", dataset=dataset.name, n=result.n_examples)]
        for label, outcome in (
            (tr(request, "training.evaluate.base"), result.base),
            (tr(request, "training.evaluate.adapter", name=name), result.adapted),
        ):
            metrics = outcome.metrics
            lines.append(
                tr(
                    request,
                    "training.evaluate.line",
                    label=label,
                    mean=metrics["mean_perplexity"],
                    corpus=metrics["corpus_perplexity"],
                    run_id=outcome.run_id,
                )
            )
        lines.append(tr(request, "training.evaluate.footer"))
        return "\n".join(lines)

    # -- export -------------------------------------------------------------------------------

    def _owned(self, name: str | None, request: gr.Request) -> Any:
        if not name:
            raise PlaygroundError(tr(request, "training.error.click_adapter"))
        return export.owned_adapter(name, owner_of(self.ctx, request))

    @user_errors
    def on_export_zip(self, name: str | None, request: gr.Request) -> tuple[str, str]:
        folder = self._owned(name, request)
        return str(export.adapter_zip(folder)), tr(request, "training.export.zipped", name=folder.name)

    @user_errors
    def on_merge(self, name: str | None, request: gr.Request) -> Any:
        """Follows the background merge, a line a second; the zip comes when it is done."""
        folder = self._owned(name, request)
        task = start_merge(folder)
        while not task.done.wait(1.0):
            stage = tr(request, f"training.export.stage.{task.stage}")
            line = tr(
                request, "training.export.merging", name=folder.name, stage=stage, seconds=int(task.elapsed_s)
            )
            yield gr.skip(), line
        if task.error is not None:
            raise task.error
        merged = export.merged_folder(folder.name)
        yield (
            str(offer_download(task.result)),
            tr(request, "training.export.merged", name=folder.name, folder=merged.name),
        )

    @user_errors
    def on_push(self, name: str | None, repo: str, token: str, what: str, request: gr.Request) -> str:
        folder = self._owned(name, request)
        if what == "merged":
            merged = export.merged_folder(folder.name)
            if not merged.is_dir():
                raise PlaygroundError(tr(request, "training.export.merge_first", name=folder.name))
            folder = merged
        url = export.push_to_hub(folder, repo, token or None)
        return tr(request, "training.export.pushed", name=folder.name, url=url)
