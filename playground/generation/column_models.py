"""Side by side columns on several models: each column names a model, an adapter and a precision.

Columns on the same model (and precision) run in one `compare_columns` call, so they share the
engine's batch; every model gets the same seed, so identical settings give identical text in
any column. A column that cannot run (an adapter of another base or user, a model it may not
load) gets its own message; the other columns still run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from playground.errors import Cancelled, PlaygroundError
from playground.generation.compare import Column, ColumnResult, compare_columns
from playground.identity import Owner
from playground.models import LoadedModel, LoadOptions, ModelManager
from playground.models.adapter_access import ChoiceRefused, usable_adapter_folder
from playground.models.adapters import attach_adapter
from playground.models.loader import Progress
from playground.models.sources import check_model_source, trust_remote_code_allowed

# The precisions a column offers an admin (of models/loader.PRECISIONS); "auto" takes the model as
# it is resident.
COLUMN_PRECISIONS = ("auto", "bf16", "fp32", "4bit", "int4")


@dataclass(frozen=True)
class ColumnPick:
    """What one column runs: its decoding `column`, `model` (a resident model's key, or for an
    admin a name to load; None: the model bar's), `adapter` (a trained adapter's name; None: the
    base model) and `precision` (one of COLUMN_PRECISIONS; other than "auto" it loads the model in
    that precision unless a copy in it is resident: admins only)."""

    column: Column
    model: str | None = None
    adapter: str | None = None
    precision: str = "auto"


@dataclass
class ColumnOutcome:
    """A column's result, or the `error` that kept it from running. `model` is the resident key it
    ran on and `precision` what the weights were held in (empty when the model never came)."""

    result: ColumnResult | None
    model: str
    adapter: str | None
    precision: str
    prompt: str = ""
    error: PlaygroundError | None = None


@contextmanager
def holding_column_model(
    manager: ModelManager,
    owner: Owner,
    model: str | None,
    precision: str = "auto",
    shared: bool = True,
    progress: Progress | None = None,
) -> Iterator[LoadedModel]:
    """The column's model, held while the block runs; not resident (or not in that precision), it
    loads, for admins only. `shared`: the deployment is shared, so only allowed sources load."""
    if precision not in COLUMN_PRECISIONS:
        raise PlaygroundError(
            f"Unknown precision {str(precision)[:20]!r}; choose one of {', '.join(COLUMN_PRECISIONS)}."
        )
    if precision != "auto" and not owner.is_admin:
        raise ChoiceRefused(
            "precision",
            f"Loading a model in {precision} is for admins here: leave the precision on auto.",
            precision=precision,
        )
    if not model and precision == "auto":
        with manager.use() as loaded:
            yield loaded
        return
    bar = manager.current
    name = model or (manager.key_of(bar) if bar is not None else None)
    if not name:
        raise PlaygroundError("No model is loaded. Pick one at the top of the page and press Load.")
    resident = manager.find(name)
    if resident is not None and precision not in ("auto", resident.options.precision):
        name = resident.requested or resident.source  # another copy, in the precision asked for
    elif owner.is_admin and resident is None:
        name = check_model_source(name, shared=shared)
    options = LoadOptions(precision=precision, trust_remote_code=trust_remote_code_allowed())
    with manager.use_model(name, options, progress, may_load=owner.is_admin) as loaded:
        yield loaded


def compare_on_models(
    manager: ModelManager,
    owner: Owner,
    picks: Sequence[ColumnPick],
    prompt_of: Callable[[LoadedModel], str],
    n_samples: int = 1,
    seed: int = 0,
    stop: threading.Event | None = None,
    shared: bool = True,
    progress: Progress | None = None,
    entropy: bool = False,
) -> list[ColumnOutcome]:
    """Every column's outcome, in column order. `prompt_of` renders the prompt for a model (its
    template and tokenizer); Stop (`stop`) ends them all; `entropy` as in `compare_columns`."""
    outcomes: list[ColumnOutcome | None] = [None] * len(picks)
    groups: dict[tuple[str | None, str], list[int]] = {}
    for i, pick in enumerate(picks):
        groups.setdefault((pick.model, pick.precision), []).append(i)
    for number, ((model, precision), idx) in enumerate(groups.items()):
        if progress is not None:
            progress(number / len(groups), model or "")
        try:
            with holding_column_model(manager, owner, model, precision, shared, progress) as loaded:
                ran = _run_on(
                    manager, owner, loaded, [picks[i] for i in idx], prompt_of, n_samples, seed, stop, entropy
                )
                for i, outcome in zip(idx, ran, strict=True):
                    outcomes[i] = outcome
        except Cancelled:
            raise
        except PlaygroundError as exc:
            for i in idx:
                if outcomes[i] is None:
                    outcomes[i] = ColumnOutcome(None, model or "", picks[i].adapter, "", error=exc)
    return [o for o in outcomes if o is not None]


def _run_on(
    manager: ModelManager,
    owner: Owner,
    loaded: LoadedModel,
    picks: list[ColumnPick],
    prompt_of: Callable[[LoadedModel], str],
    n_samples: int,
    seed: int,
    stop: threading.Event | None,
    entropy: bool = False,
) -> list[ColumnOutcome]:
    """The outcomes of `picks`, all on `loaded`: a refused adapter's column gets the refusal, the
    others run in one comparison."""
    key = manager.key_of(loaded) or loaded.name
    outcomes: list[ColumnOutcome] = []
    columns: dict[int, Column] = {}
    for n, pick in enumerate(picks):
        outcomes.append(ColumnOutcome(None, key, pick.adapter, loaded.precision))
        try:
            attached = None
            if pick.adapter:
                attached = attach_adapter(loaded, usable_adapter_folder(owner, pick.adapter, loaded))
        except PlaygroundError as exc:
            outcomes[n].error = exc
            continue
        columns[n] = Column(pick.column.label, pick.column.settings, attached)
    if columns:
        prompt = prompt_of(loaded)
        results = compare_columns(
            loaded, prompt, list(columns.values()), n_samples, seed, stop, entropy=entropy
        )
        for n, result in zip(columns, results, strict=True):
            outcomes[n].result, outcomes[n].prompt = result, prompt
    return outcomes
