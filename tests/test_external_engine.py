"""PLAYGROUND_ENGINE_URL: generation on an external OpenAI-compatible engine, against a real
`transformers serve` process and against a second playground's own /v1 API."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import httpx
import pytest

from playground.generation import DecodingSettings, stream_generate
from playground.generation.compare import RowRequest, generate_rows
from playground.identity import Owner
from tests.api_server import free_port, serve
from tests.helpers import wait_for

GREEDY = DecodingSettings(do_sample=False, max_new_tokens=8)


def _remote_context(monkeypatch, url: str, model: str | None, load: str):
    from playground.context import AppContext
    from playground.models import LoadOptions

    monkeypatch.setenv("PLAYGROUND_ENGINE_URL", url)
    if model:
        monkeypatch.setenv("PLAYGROUND_ENGINE_MODEL", model)
    ctx = AppContext()
    monkeypatch.delenv("PLAYGROUND_ENGINE_URL")
    monkeypatch.delenv("PLAYGROUND_ENGINE_MODEL", raising=False)
    ctx.models.load(load, LoadOptions(precision="fp32"))
    return ctx


def _spells_itself(tokenizer, token_id: int) -> bool:
    """Whether a token's text alone tokenizes back to that one token."""
    piece = tokenizer.decode([token_id])
    return "\ufffd" not in piece and tokenizer.encode(piece, add_special_tokens=False) == [token_id]


def _local_greedy(loaded, prompt: str, settings: DecodingSettings) -> str:
    *_, last = stream_generate(loaded, prompt, settings)
    return last.text


def test_generation_goes_to_another_playgrounds_api(tiny_llama, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tiny_llama.parent))
    engine = serve(tiny_llama)  # the external engine: a second app, its own /v1 API
    try:
        ctx = _remote_context(monkeypatch, engine.base_url, engine.model, str(tiny_llama))
        loaded = ctx.models.current
        updates = list(stream_generate(loaded, "the cat sat", GREEDY))
        expected = _local_greedy(engine.ctx.models.current, "the cat sat", GREEDY)
        assert updates[-1].finished and updates[-1].text == expected
        assert updates[-1].new_tokens == 8 and updates[-1].reason == "length"
        assert any("external engine" in u.queue for u in updates[:-1])
        # The request really ran over there: this app's own engine never started.
        assert "_engine" not in loaded.__dict__ and engine.ctx.models.current.__dict__["_engine"].steps > 0
        stop = expected[3:5]
        *_, cut = stream_generate(loaded, "the cat sat", GREEDY.with_(stop=(stop,)))
        # Cut at the stop string (by the engine, which honours `stop`, or here for one that does not).
        assert cut.text == expected[: expected.index(stop)] and cut.reason in ("eos", "stop string")
        # Side-by-side columns go there too, each with its own settings.
        sampled = DecodingSettings(temperature=1.0, max_new_tokens=6)
        rows = generate_rows(loaded, [RowRequest("the cat sat", GREEDY, 0), RowRequest("hello", sampled, 3)])
        assert rows[0].text == expected
        assert rows[1].text == _local_greedy(engine.ctx.models.current, "hello", sampled.with_(seed=3))
        from playground.ui.model_bar import model_status

        assert engine.base_url in model_status(ctx)
        with pytest.raises(Exception, match="not available with the external engine"):
            list(stream_generate(loaded, "x", GREEDY, adapter="any"))
    finally:
        engine.demo.close()


@pytest.fixture
def transformers_serve(embedded_model):
    """`transformers serve` on the embedded model's converted folder, offline, on a free port."""
    cli = shutil.which("transformers") or os.path.join(os.path.dirname(os.sys.executable), "transformers")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [cli, "serve", embedded_model.source, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, "transformers serve exited"
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=180, every=0.5)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_streams_from_transformers_serve(transformers_serve, monkeypatch):
    from playground.models import EMBEDDED_KEY

    ctx = _remote_context(monkeypatch, transformers_serve, None, EMBEDDED_KEY)
    loaded = ctx.models.current
    prompt = loaded.default_template.render_conversation(
        [], "What is the capital of France?", None, loaded.tokenizer
    )
    settings = DecodingSettings(do_sample=False, max_new_tokens=12)
    updates = list(stream_generate(loaded, prompt, settings, threading.Event()))
    assert len(updates) > 2 and updates[-1].finished  # streamed piece by piece
    assert "Paris" in updates[-1].text
    assert "_engine" not in loaded.__dict__  # nothing was generated in this process
    # The token explorer needs the engine's logprobs: it says so where they do not come.
    from playground.errors import PlaygroundError
    from playground.explorer.explore import explore

    try:
        explored = explore(loaded, prompt, settings.with_(max_new_tokens=4, seed=1))
    except PlaygroundError as exc:
        assert "logprobs" in str(exc) and transformers_serve in str(exc)
    else:  # an engine version that returns them: candidates fill in
        assert explored.engine == transformers_serve and all(s.ids for s in explored.steps)


def test_weightless_app_chats_battles_and_explores_through_another_playground(
    tiny_llama, monkeypatch, tmp_path
):
    """External mode holds no weights: chat, an arena battle and the token explorer (from the
    engine's logprobs) all run on a second playground; weight-bound features say why not."""
    import random

    import transformers

    from playground.arena.battles import in_template, prepare_contestant, start_battle, stream_battle
    from playground.arena.contestants import contestants
    from playground.evaluation.perplexity import perplexity
    from playground.explorer.candidates import step_candidates
    from playground.explorer.explore import branch, explore
    from playground.models.adapters import attach_adapter
    from playground.models.memory import measured_bytes
    from playground.models.weightless import WeightsElsewhere, is_weightless
    from playground.training.config import TrainingConfig
    from playground.ui.model_bar import model_status

    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tiny_llama.parent))
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
    engine = serve(tiny_llama)
    try:
        there = engine.ctx.models.current

        def no_weights(*args, **kwargs):
            raise AssertionError("the external-mode app loaded model weights")

        for cls in (transformers.AutoModelForCausalLM, transformers.AutoModelForSeq2SeqLM):
            monkeypatch.setattr(cls, "from_pretrained", no_weights)
        ctx = _remote_context(monkeypatch, engine.base_url, engine.model, str(tiny_llama))
        loaded = ctx.models.current
        assert is_weightless(loaded) and measured_bytes(loaded.model) == 0
        assert list(loaded.model.parameters()) == [] and ctx.models.resident()[0].bytes == 0
        assert f"generation by {engine.base_url}" in model_status(ctx)

        # Chat: streamed from the engine, the engine's own greedy answer.
        *_, last = stream_generate(loaded, "the cat sat", GREEDY)
        assert last.text == _local_greedy(there, "the cat sat", GREEDY) and last.new_tokens == 8

        # Arena: two contestants of the one model, both answers from the engine, same seed.
        offered = contestants(ctx.models, Owner("user:tester"))
        assert offered and all(c.adapter is None for c in offered)
        picked = [c for c in offered if c.preset in ("greedy", "default sampling (T 0.7, top-p 0.9)")]
        battle = start_battle(
            picked, "Name a colour.", owner="tester", max_new_tokens=6, rng=random.Random(1)
        )
        *_, (answer_a, answer_b) = stream_battle(ctx.models, battle)
        assert battle.finished and not battle.stopped
        for contestant, answer in ((battle.a, answer_a), (battle.b, answer_b)):
            prepared = prepare_contestant(there, contestant, battle.seed, battle.max_new_tokens)
            assert answer == _local_greedy(there, in_template(there, battle.prompt), prepared.settings)

        # Token explorer: candidates from the engine's logprobs match the engine's own explorer.
        settings = DecodingSettings(do_sample=False, max_new_tokens=6, seed=5)
        remote = explore(loaded, "the cat sat", settings)
        local = explore(there, "the cat sat", settings)
        assert remote.engine == engine.base_url and local.engine is None
        assert remote.ids == local.ids and remote.text == local.text
        for mine, theirs in zip(remote.steps, local.steps, strict=True):
            assert mine.chosen_logprob == pytest.approx(theirs.chosen_logprob, abs=1e-3)
            theirs_by_id = dict(zip(theirs.ids, theirs.raw_logprobs, strict=True))
            for token_id, logprob in zip(mine.ids, mine.raw_logprobs, strict=True):
                assert logprob == pytest.approx(theirs_by_id[token_id], abs=1e-3)
            # The API names candidates by text, so byte pieces that decode to no character alone
            # are lost on the way; every other one of the engine's top 20 is here.
            spelled = [i for i in theirs.ids[:20] if _spells_itself(loaded.tokenizer, i)]
            assert spelled and set(spelled) <= set(mine.ids)
        shown = step_candidates(loaded.tokenizer, remote, 0)
        assert len(shown) == len(remote.steps[0].ids) <= 21 and sum(c.chosen for c in shown) == 1
        assert all(c.after == pytest.approx(c.raw) for c in shown)  # the engine's are raw only
        other = remote.steps[1].ids[1]
        forked = branch(loaded, remote, 1, other)
        assert forked.ids[:2] == (remote.ids[0], other) and forked.branched_at == 1
        # The same continuation as the engine's own branch (up to a byte piece named by text only).
        same = branch(there, local, 1, other)
        assert forked.ids == same.ids[: len(forked.ids)]
        assert forked.ids == same.ids or forked.reason == "a token the engine named by text only"

        # What needs weights says so, and nothing was loaded on the way.
        with pytest.raises(WeightsElsewhere, match="Perplexity needs the model's weights"):
            perplexity(loaded.model, loaded.tokenizer, [("the cat", " sat")])
        with pytest.raises(WeightsElsewhere, match="An adapter needs the model's weights"):
            attach_adapter(loaded, tmp_path / "any-adapter")
        with pytest.raises(WeightsElsewhere, match="Training needs the model's weights"):
            ctx.jobs.submit(TrainingConfig(model=str(tiny_llama)))
        with pytest.raises(WeightsElsewhere, match=engine.base_url):
            loaded.model(input_ids=None)
        assert "_engine" not in loaded.__dict__
    finally:
        engine.demo.close()
