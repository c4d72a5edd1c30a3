"""One arena battle: two contestants drawn from the ticked ones, both answering the same prompt.

The battle lives in the asker's session; its answers stream through each model's generation
engine (the one decode loop), side by side, with the same seed. Which side is which stays in the
battle until the vote (votes.py) reveals it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

from playground.arena.contestants import Contestant
from playground.errors import PlaygroundError
from playground.generation.settings import PRESETS, DecodingSettings
from playground.generation.stream import stream_generate
from playground.models import LoadedModel, ModelManager
from playground.models.adapters import attach_adapter
from playground.names import named_path
from playground.paths import adapters_dir

MAX_PROMPT_CHARS = 4000
MAX_NEW_TOKENS = 512
# A vote later than this after the battle started is refused: the contestants may have changed.
BATTLE_TTL_SECONDS = 3600.0


@dataclass
class Battle:
    """id: unique, so a vote is stored once; owner: who asked (only they may vote);
    test_set: the data set the prompt was drawn from (None: typed)."""

    id: str
    owner: str
    prompt: str
    a: Contestant
    b: Contestant
    seed: int
    max_new_tokens: int
    test_set: str | None = None
    created: float = field(default_factory=time.time)
    answer_a: str = ""
    answer_b: str = ""
    settings_a: dict[str, Any] = field(default_factory=dict)
    settings_b: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    stopped: bool = False  # ended by Stop: the answers are cut short, so no vote
    outcome: str | None = None  # set once the vote is stored

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.created > BATTLE_TTL_SECONDS


def start_battle(
    picked: Sequence[Contestant],
    prompt: str,
    owner: str,
    max_new_tokens: int = 128,
    test_set: str | None = None,
    rng: random.Random | None = None,
) -> Battle:
    """Two different contestants of `picked`, in random order, with a fresh seed."""
    rng = rng or random.SystemRandom()
    prompt = (prompt or "").strip()
    if not prompt:
        raise PlaygroundError("Type a question (or draw one from a test set) first.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PlaygroundError(
            f"The question has {len(prompt):,} characters; the arena takes up to {MAX_PROMPT_CHARS:,}."
        )
    if not 1 <= int(max_new_tokens) <= MAX_NEW_TOKENS:
        raise PlaygroundError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS}.")
    unique = list(dict.fromkeys(picked))
    if len(unique) < 2:
        raise PlaygroundError("Tick at least two contestants: a battle needs two.")
    a, b = rng.sample(unique, 2)
    return Battle(
        id=uuid.uuid4().hex,
        owner=owner,
        prompt=prompt,
        a=a,
        b=b,
        seed=rng.randrange(2**31),
        max_new_tokens=int(max_new_tokens),
        test_set=test_set,
    )


@dataclass(frozen=True)
class Prepared:
    """One contestant ready to answer: its decoding settings, its adapter's name on the model
    (None: the base model), and what stays hidden until a vote reveals it."""

    settings: DecodingSettings
    adapter: str | None
    hidden: dict[str, Any]


def prepare_contestant(
    loaded: LoadedModel, contestant: Contestant, seed: int, max_new_tokens: int
) -> Prepared:
    """The contestant's adapter attached to its resident model, and its settings."""
    adapter = None
    if contestant.adapter:
        adapter = attach_adapter(loaded, named_path(adapters_dir(), contestant.adapter, "adapter"))
    settings = PRESETS[contestant.preset].with_(max_new_tokens=max_new_tokens, seed=seed)
    hidden = {
        "contestant": contestant.label,
        "model": loaded.name,
        "source": loaded.source,
        "precision": loaded.precision,
        "adapter": contestant.adapter,
        "preset": contestant.preset,
        "template": loaded.default_template.name,
        "decoding": {k: v for k, v in asdict(settings).items() if k != "stop"},
    }
    return Prepared(settings, adapter, hidden)


def in_template(loaded: LoadedModel, prompt: str) -> str:
    """The prompt as the model's own template sends it (the arena asks every model in its own)."""
    return loaded.default_template.render(prompt, "", None, loaded.tokenizer)


def stream_battle(
    manager: ModelManager, battle: Battle, stop: threading.Event | None = None
) -> Iterator[tuple[str, str]]:
    """(answer A, answer B) as both grow; the battle holds both answers and settings at the end.

    Both models stay held (not evictable) until both answers end; `stop` (the session's Stop) or
    a consumer that goes away (closed tab) stops both generations."""
    if battle.finished:
        raise PlaygroundError("This battle has its answers already; ask again for a new one.")
    with ExitStack() as stack:
        streams, stops = {}, []
        for side, contestant in (("a", battle.a), ("b", battle.b)):
            loaded = stack.enter_context(manager.use_model(contestant.model, may_load=False))
            prepared = prepare_contestant(loaded, contestant, battle.seed, battle.max_new_tokens)
            setattr(battle, f"settings_{side}", prepared.hidden)
            side_stop = threading.Event()
            stops.append(side_stop)
            streams[side] = stream_generate(
                loaded,
                in_template(loaded, battle.prompt),
                prepared.settings,
                side_stop,
                prepared.adapter,
                owner=battle.owner,
            )
            stack.callback(side_stop.set)
            stack.callback(streams[side].close)
        texts = {"a": "", "b": ""}
        live = dict(streams)
        while live:
            if stop is not None and stop.is_set():
                battle.stopped = True
                for side_stop in stops:
                    side_stop.set()
            for side in list(live):
                update = next(live[side], None)
                if update is None or update.finished:
                    live.pop(side)
                if update is not None:
                    texts[side] = update.text
            yield texts["a"], texts["b"]
    battle.answer_a, battle.answer_b = texts["a"], texts["b"]
    battle.finished = True
    yield texts["a"], texts["b"]
