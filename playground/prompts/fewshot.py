"""Few-shot prompts: pick examples from a pool and write them into a template.

Where the examples go:
- raw template with `{examples}`: the example block replaces it (the query still fills
  `{instruction}`/`{input}`, `{system}` gets the system text plus `system_suffix`);
- raw template without `{examples}`: the block goes right after `{system}` (the system text
  first, as the model was trained), or in front of everything when there is no `{system}`;
- chat template (`text=None`): each example is a user turn and an assistant turn, then the query.
Chain of thought adds the worked example as one more example and ends the prompt with the
trigger, so that the model's answer starts with its reasoning.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from playground.atomic import TEMP_PREFIX, atomic_write_json
from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.identity import SYSTEM, Owner
from playground.names import named_path
from playground.paths import data_dir
from playground.prompts.templates import PromptTemplate, fill, render_chat

SELECTIONS = ("first", "last", "random", "similar", "manual")


@dataclass(frozen=True)
class FewShotConfig:
    """How many examples, which ones, and how each is written.

    With selection="manual" the examples are `manual_ids` in that order and `k` is set to
    their number. `example_template` uses {instruction} {input} {output} {index} (1-based).
    """

    k: int = 0
    selection: str = "first"
    seed: int = 0
    manual_ids: tuple[str, ...] = ()
    example_template: str = "USER: {instruction}{input} ASSISTANT: {output}"
    separator: str = "\n"
    cot: bool = False
    cot_trigger: str = "Let's think step by step."
    cot_example: str | None = None
    system_suffix: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise PlaygroundError(f"The number of examples must be a whole number ≥ 0, not {self.k!r}.")
        if self.selection not in SELECTIONS:
            raise PlaygroundError(
                f"Unknown example selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise PlaygroundError(f"The seed must be a whole number, not {self.seed!r}.")
        if isinstance(self.manual_ids, str) or not isinstance(self.manual_ids, Sequence):
            raise PlaygroundError("manual_ids must be a list of example ids.")
        for name in ("example_template", "separator", "cot_trigger", "system_suffix"):
            if not isinstance(getattr(self, name), str):
                raise PlaygroundError(f"{name} must be text.")
        if self.cot_example is not None and not isinstance(self.cot_example, str):
            raise PlaygroundError("cot_example must be text or empty.")
        # Frozen (hashable, safe to share between requests), so normalise through object.__setattr__.
        object.__setattr__(self, "manual_ids", tuple(str(i) for i in self.manual_ids))
        object.__setattr__(self, "cot", bool(self.cot))
        if self.selection == "manual":
            object.__setattr__(self, "k", len(self.manual_ids))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["manual_ids"] = list(self.manual_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FewShotConfig:
        """Unknown keys are ignored so that recipes saved by a newer version still load."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def strategy_name(config: FewShotConfig) -> str:
    """The word the leaderboard groups runs by."""
    if config.cot:
        return "cot"
    return "k-shot" if config.k > 0 else "zero-shot"


# --- selection -------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002ffff"
# CJK text has no spaces, so each character is a word; elsewhere runs of letters/digits are.
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 over a fixed list of texts; `scores` rates every text against a query."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, text in enumerate(texts):
            counts = Counter(tokenize(text))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        self.avgdl = (sum(self.lengths) / len(self.lengths) if self.lengths else 0.0) or 1.0

    def __len__(self) -> int:
        return len(self.lengths)

    def scores(self, query: str) -> list[float]:
        n = len(self.lengths)
        out = [0.0] * n
        for term in set(tokenize(query)):
            posting = self.postings.get(term)
            if not posting:
                continue
            # The "+1" form keeps idf positive even for words found in most texts.
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for i, tf in posting:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avgdl)
                out[i] += idf * tf * (self.k1 + 1) / norm
        return out


def _text(example: Example) -> str:
    return f"{example.instruction}\n{example.input}"


# BM25 indexes kept between builders, by the caller's key for a pool (the prompt lab's preview
# reruns on every keystroke; a 5000-row index should not).
_SHARED_INDEXES: OrderedDict[Hashable, BM25] = OrderedDict()
_SHARED_INDEXES_KEPT = 4
_shared_indexes_lock = threading.Lock()


def shared_index(key: Hashable, pool: Sequence[Example]) -> BM25:
    """The BM25 index of `pool`, built once for `key` and reused (the few most recent are kept)."""
    with _shared_indexes_lock:
        index = _SHARED_INDEXES.get(key)
        if index is not None:
            _SHARED_INDEXES.move_to_end(key)
            return index
    index = BM25([_text(e) for e in pool])
    with _shared_indexes_lock:
        _SHARED_INDEXES[key] = index
        while len(_SHARED_INDEXES) > _SHARED_INDEXES_KEPT:
            _SHARED_INDEXES.popitem(last=False)
    return index


def _is_query(example: Example, query: Example) -> bool:
    # By text, not id: a training file and a test file both numbered 1..N share ids without
    # sharing rows, while the same question in both is still the query itself.
    return (example.instruction, example.input) == (query.instruction, query.input)


def select_examples(
    pool: Sequence[Example], query: Example, config: FewShotConfig, *, index: BM25 | None = None
) -> list[Example]:
    """The examples shown before `query`; never the query itself, never a row without output.

    `index` is a BM25 built over `pool` (same rows, same order) to reuse across queries.
    """
    if config.selection == "manual":
        return _manual(pool, query, config.manual_ids)
    if config.k == 0:
        return []
    if config.k > len(pool):
        raise PlaygroundError(
            f"Asked for {config.k} examples but the pool has only {len(pool)} rows. Lower k."
        )
    usable = [i for i, e in enumerate(pool) if e.output is not None and not _is_query(e, query)]
    if config.k > len(usable):
        raise PlaygroundError(
            f"Asked for {config.k} examples but only {len(usable)} rows of the pool have an output "
            "(a question is never its own example). Lower k or use a file with answers."
        )
    if config.selection == "first":
        picks = usable[: config.k]
    elif config.selection == "last":
        picks = usable[-config.k :]
    elif config.selection == "random":
        # Own generator: global random state must not change picks; the query id gives
        # each question its own draw, still the same on every run.
        picks = random.Random(f"{config.seed}:{query.id}").sample(usable, config.k)
    else:
        if index is None:
            index = BM25([_text(e) for e in pool])
        elif len(index) != len(pool):
            raise ValueError("the BM25 index was built over a different pool")
        scores = index.scores(_text(query))
        picks = heapq.nsmallest(config.k, usable, key=lambda i: (-scores[i], i))
    return [pool[i] for i in picks]


def _manual(pool: Sequence[Example], query: Example, ids: Sequence[str]) -> list[Example]:
    by_id: dict[str, Example] = {}
    for e in pool:
        by_id.setdefault(e.id, e)
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise PlaygroundError(f"No example with id {', '.join(map(repr, unknown))} in the pool.")
    missing = [i for i in ids if by_id[i].output is None]
    if missing:
        raise PlaygroundError(
            f"Example {', '.join(map(repr, missing))} has no output, so it cannot be shown as an example."
        )
    # A hand-picked row that is the question itself is dropped: it would give the answer away.
    return [by_id[i] for i in ids if not _is_query(by_id[i], query)]


# --- rendering -------------------------------------------------------------------------------


def join_system(system: str, suffix: str) -> str:
    """System text plus the prompt-variant sentence: a space between them, except after CJK text."""
    if not system or not suffix:
        return system + suffix
    last = system[-1]
    if last.isspace() or suffix[0].isspace() or "\u2e80" <= last <= "\u9fff" or "\uff00" <= last <= "\uffef":
        return system + suffix
    return f"{system} {suffix}"


def _append_trigger(text: str, trigger: str) -> str:
    if not trigger:
        return text
    return text + ("" if not text or text[-1].isspace() else " ") + trigger


def _user_text(example: Example) -> str:
    # Same joining as PromptTemplate.render for chat templates, so 0-shot prompts match it.
    return f"{example.instruction}\n\n{example.input}" if example.input else example.instruction


def _render_chat(messages: list[dict[str, str]], system: str, tokenizer: Any) -> str:
    from jinja2.exceptions import TemplateError

    rejected = (TemplateError, ValueError)
    try:
        return render_chat(messages, system, tokenizer)
    except rejected as err:
        if not system:
            raise PlaygroundError(f"The model's chat template rejected the prompt: {err}") from err
    # Some templates (Mistral's) refuse a system turn: put the system text in the first user turn.
    first = dict(messages[0], content=f"{system}\n\n{messages[0]['content']}")
    try:
        return render_chat([first, *messages[1:]], "", tokenizer)
    except rejected as err:
        raise PlaygroundError(f"The model's chat template rejected the prompt: {err}") from err


@dataclass(frozen=True)
class PromptPreview:
    """What the prompt lab shows before running: the text, its size and any budget warning."""

    text: str
    n_tokens: int
    context_length: int
    max_new_tokens: int
    warning: str | None
    example_ids: tuple[str, ...] = field(default=())

    @property
    def exceeds(self) -> bool:
        return self.context_length > 0 and self.n_tokens + self.max_new_tokens > self.context_length


def token_budget_warning(n_tokens: int, max_new_tokens: int, context_length: int) -> str | None:
    """None while prompt + new tokens stay within 90% of the context (unknown context: <= 0)."""
    total = n_tokens + max_new_tokens
    if context_length <= 0 or total <= 0.9 * context_length:
        return None
    with_new = f"with {max_new_tokens} new tokens " if max_new_tokens else ""
    if total > context_length:
        return (
            f"The prompt has {n_tokens} tokens; {with_new}it exceeds the model's context of "
            f"{context_length} tokens. Use fewer or shorter examples, or fewer new tokens."
        )
    return (
        f"The prompt has {n_tokens} tokens; {with_new}it uses {100 * total // context_length}% of the "
        f"model's context of {context_length} tokens."
    )


class FewShotBuilder:
    """Builds the exact prompt text for each query of an evaluation or of the prompt lab."""

    def __init__(
        self,
        template: PromptTemplate,
        config: FewShotConfig,
        pool: Sequence[Example],
        *,
        index_key: Hashable | None = None,
    ):
        """`index_key` names the pool (same key, same rows) so its BM25 index is shared between builders."""
        self.template = template
        self.config = config
        self.pool = list(pool)
        self.index_key = index_key
        self._index: BM25 | None = None

    def select(self, query: Example) -> list[Example]:
        if self.config.selection == "similar" and self.config.k > 0 and self._index is None:
            if self.index_key is None:
                self._index = BM25([_text(e) for e in self.pool])
            else:
                self._index = shared_index(self.index_key, self.pool)
        return select_examples(self.pool, query, self.config, index=self._index)

    def build(self, query: Example, tokenizer: Any = None) -> str:
        return self._build(query, tokenizer)[0]

    def stop_strings(self) -> tuple[str, ...]:
        """Where a generated answer ends: the template's next turn, and the examples' own."""
        example_turn = PromptTemplate("examples", self.config.example_template).stop_strings
        # Chat templates write examples as chat turns, not with example_template.
        uses_examples = self.config.k > 0 and not self.template.uses_chat_template
        stops = self.template.stop_strings + (example_turn if uses_examples else ())
        return tuple(dict.fromkeys(stops))

    def build_pair(self, query: Example, tokenizer: Any = None) -> tuple[str, str]:
        """(prompt, reference answer), for perplexity of the reference given the prompt."""
        if not query.answers:
            raise PlaygroundError(f"Row {query.id!r} has no reference output to score.")
        return self.build(query, tokenizer), query.answers[0]

    def preview(
        self, query: Example, tokenizer: Any, context_length: int, max_new_tokens: int = 0
    ) -> PromptPreview:
        text, examples = self._build(query, tokenizer)
        n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return PromptPreview(
            text=text,
            n_tokens=n_tokens,
            context_length=context_length,
            max_new_tokens=max_new_tokens,
            warning=token_budget_warning(n_tokens, max_new_tokens, context_length),
            example_ids=tuple(e.id for e in examples),
        )

    def _build(self, query: Example, tokenizer: Any) -> tuple[str, list[Example]]:
        examples = self.select(query)
        system = join_system(self.template.system, self.config.system_suffix)
        if self.template.text is None:
            text = self._chat(examples, query, system, tokenizer)
        else:
            text = self._raw(examples, query, system)
        if self.config.cot:
            text = _append_trigger(text, self.config.cot_trigger)
        return text, examples

    def _worked_example(self) -> str | None:
        return self.config.cot_example if self.config.cot and self.config.cot_example else None

    def _raw(self, examples: list[Example], query: Example, system: str) -> str:
        cfg = self.config
        blocks = [
            fill(
                cfg.example_template,
                {"instruction": e.instruction, "input": e.input, "output": e.output or "", "index": str(n)},
            )
            for n, e in enumerate(examples, 1)
        ]
        if self._worked_example():
            blocks.append(self._worked_example())
        block = cfg.separator.join(blocks) + cfg.separator if blocks else ""
        values = {"system": system, "instruction": query.instruction, "input": query.input}
        text = self.template.text or ""
        if "{examples}" not in text:
            text = (
                text.replace("{system}", "{system}{examples}", 1)
                if "{system}" in text
                else "{examples}" + text
            )
        return fill(text, {**values, "examples": block})

    def _chat(self, examples: list[Example], query: Example, system: str, tokenizer: Any) -> str:
        messages: list[dict[str, str]] = []
        for e in examples:
            messages.append({"role": "user", "content": _user_text(e)})
            messages.append({"role": "assistant", "content": e.output or ""})
        user = _user_text(query)
        worked = self._worked_example()
        trigger = self.config.cot_trigger
        if worked and trigger and trigger in worked and worked.index(trigger) > 0:
            # Split at the trigger so the reasoning is the assistant's turn, as it should be.
            cut = worked.index(trigger)
            messages.append({"role": "user", "content": worked[:cut].rstrip()})
            messages.append({"role": "assistant", "content": worked[cut:]})
        elif worked:
            user = f"{worked}\n\n{user}"
        messages.append({"role": "user", "content": user})
        return _render_chat(messages, system, tokenizer)


# --- recipes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A saved prompt set-up: template plus few-shot settings."""

    name: str
    template: PromptTemplate
    config: FewShotConfig


def recipes_dir() -> Path:
    return data_dir() / "recipes"


def _recipe_path(name: str) -> Path:
    return named_path(recipes_dir(), name, "recipe", ".json")


def save_recipe(name: str, template: PromptTemplate, config: FewShotConfig, owner: Owner = SYSTEM) -> Path:
    """Save under `name`; a recipe someone else saved under that name is never overwritten."""
    path = _recipe_path(name)
    if path.is_file():
        owner.require(_recipe_owner(path), f"Recipe {path.stem!r}")
    atomic_write_json(
        path,
        {
            "version": 1,
            "name": path.stem,
            "owner": owner.id,
            "template": asdict(template),
            "config": config.to_dict(),
        },
    )
    return path


def _recipe_owner(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("owner")
    except (OSError, ValueError, AttributeError):
        return None


def load_recipe(name: str) -> Recipe:
    path = _recipe_path(name)
    if not path.is_file():
        raise PlaygroundError(f"No recipe named {name.strip()!r}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        t = data["template"]
        template = PromptTemplate(t["name"], t["text"], t.get("system", ""), t.get("notes", ""))
        config = FewShotConfig.from_dict(data["config"])
    except PlaygroundError as err:
        raise PlaygroundError(f"Recipe {path.stem!r} has a bad setting: {err}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise PlaygroundError(f"Recipe {path.stem!r} is damaged and cannot be read ({err}).") from err
    return Recipe(path.stem, template, config)


def list_recipes() -> list[str]:
    folder = recipes_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith(TEMP_PREFIX))
