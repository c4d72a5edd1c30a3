"""Several resident models: two at once, least-recently-used eviction, memory accounting, refusals."""

from __future__ import annotations

import threading
import time

import pytest

from playground.errors import ModelLoadError, PlaygroundError
from playground.models import LoadOptions, ModelManager
from playground.models.loader import planned_footprint
from playground.models.memory import GIB, MemoryBudget
from tests.tiny_models import build_causal_lm

FP32 = LoadOptions(precision="fp32")


def _weights_bytes(loaded) -> int:
    return sum(t.numel() * t.element_size() for t in [*loaded.model.parameters(), *loaded.model.buffers()])


@pytest.fixture(scope="module")
def tiny_third(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny-third"), "llama", seed=3)


def test_two_resident_at_once_with_their_memory(tiny_llama, tiny_mistral):
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    first = manager.load(str(tiny_llama), FP32)
    with manager.use_model(str(tiny_mistral), FP32) as second:
        assert manager.current is first, "another tab's model does not change the bar's"
        infos = {i.name: i for i in manager.resident()}
        assert set(infos) == {first.name, second.name}
        assert infos[second.name].users == 1 and infos[first.name].users == 0
        assert infos[first.name].current and not infos[second.name].current
    assert first.model is not None and second.model is not None
    # The budget counts what the weights take; the estimate before loading agrees with it.
    for loaded in (first, second):
        info = next(i for i in manager.resident() if i.name == loaded.name)
        assert info.bytes == _weights_bytes(loaded)
        assert planned_footprint(loaded.source, FP32)[1] == sum(
            p.numel() * 4 for p in loaded.model.parameters()
        )
    assert manager.find(second.name) is second and manager.find(str(tiny_llama)) is first
    assert manager.find("nothing-like-this") is None
    assert manager.resident()[0].users == 0, "the hold ended with the block"


def test_eviction_takes_least_recently_used_idle_model(tiny_llama, tiny_mistral, tiny_third):
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    a = manager.load(str(tiny_llama), FP32)
    size = manager.resident()[0].bytes
    # Room for two tiny models, not three.
    manager.budget = MemoryBudget(fixed_bytes=int(size * 2.5))
    with manager.use_model(str(tiny_mistral), FP32) as b:
        pass
    with manager.use_model(str(tiny_llama), FP32):  # a is now the more recent of the two
        pass
    with manager.use_model(str(tiny_third), FP32) as c:
        assert b.model is None, "b was the least recently used"
        assert a.model is not None and manager.current is a
        assert sorted(i.name for i in manager.resident()) == sorted([a.name, c.name])
    # A model in use is never evicted: with c held, the next load takes a (the bar's, idle).
    with manager.use_model(a.name) as held_a:
        assert held_a is a
    with manager.use_model(c.name) as held_c:
        with manager.use_model(str(tiny_mistral), FP32) as b2:
            assert held_c.model is not None and a.model is None
            # The bar's model was the one left to evict: the newcomer takes its place on the bar.
            assert manager.current is b2
            assert {i.name for i in manager.resident()} == {c.name, b2.name}


def test_eviction_waits_for_the_user_of_the_last_idle_candidate(tiny_llama, tiny_mistral):
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB, max_models=1))
    a = manager.load(str(tiny_llama), FP32)
    order = []

    def user():
        with manager.use() as loaded:
            order.append(("start", loaded.name))
            time.sleep(0.4)
            order.append(("end", loaded.name))

    thread = threading.Thread(target=user)
    thread.start()
    time.sleep(0.1)
    with manager.use_model(str(tiny_mistral), FP32):
        order.append(("loaded", "b"))
    thread.join()
    assert [o[0] for o in order] == ["start", "end", "loaded"] and a.model is None


def test_model_that_never_fits_is_refused_and_nothing_is_lost(tiny_llama, tiny_mistral):
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    a = manager.load(str(tiny_llama), FP32)
    size = manager.resident()[0].bytes
    # Models may take half a tiny model's size: the next one cannot fit even with `a` unloaded.
    manager.budget = MemoryBudget(fixed_bytes=size // 2)
    with pytest.raises(ModelLoadError, match=r"needs about .* nothing was unloaded"):
        with manager.use_model(str(tiny_mistral), FP32):
            pass
    assert manager.current is a and a.model is not None
    assert [i.name for i in manager.resident()] == [a.name]


def test_not_resident_model_without_load_right_is_a_clear_error(tiny_llama, tiny_mistral):
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    a = manager.load(str(tiny_llama), FP32)
    with manager.use_model(a.name, may_load=False) as held:
        assert held is a
    with pytest.raises(PlaygroundError, match="not loaded, and loading models is for admins"):
        with manager.use_model(str(tiny_mistral), FP32, may_load=False):
            pass
    assert [i.name for i in manager.resident()] == [a.name]
