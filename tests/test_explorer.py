"""The token explorer's service: kept candidates through the engine, after-processor numbers equal
to transformers' own processors, branches, per-character pieces, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.errors import PlaygroundError
from playground.explorer.candidates import after_logprobs, step_candidates
from playground.explorer.explore import answer_pieces, branch, explore
from playground.generation.engine import Request, engine_for
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.stream import encode_prompt
from playground.models import LoadOptions, load_model

PROMPT = "The quick brown fox"
SAMPLING = DecodingSettings(
    temperature=0.8, top_k=12, top_p=0.9, min_p=0.02, repetition_penalty=1.3, max_new_tokens=10, seed=5
)


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def transformers_processors(s: DecodingSettings) -> LogitsProcessorList:
    """What generate() builds for these settings, from transformers' own classes."""
    chain = LogitsProcessorList()
    if s.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
    if s.do_sample:
        chain.append(TemperatureLogitsWarper(s.temperature))
        if s.top_k > 0:
            chain.append(TopKLogitsWarper(s.top_k))
        if s.top_p < 1:
            chain.append(TopPLogitsWarper(s.top_p))
        if s.min_p > 0:
            chain.append(MinPLogitsWarper(s.min_p))
    return chain


def reference_after(logits: torch.Tensor, history: list[int], s: DecodingSettings, ids) -> list[float]:
    scores = transformers_processors(s)(torch.tensor([history]), logits.clone())
    return scores.log_softmax(dim=-1)[0, list(ids)].tolist()


def assert_logprobs_equal(ours, theirs) -> None:
    assert [x == -math.inf for x in ours] == [x == -math.inf for x in theirs]
    assert [x for x in ours if x > -math.inf] == pytest.approx([x for x in theirs if x > -math.inf], abs=1e-4)


def full_logits(loaded, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return loaded.model(input_ids=torch.tensor([ids])).logits[:, -1, :].float()


def test_each_step_keeps_raw_and_after_numbers_equal_to_transformers_processors(tiny):
    e = explore(tiny, PROMPT, SAMPLING)
    assert len(e.steps) == len(e.ids) > 3
    for i, step in enumerate(e.steps):
        history = [*e.prompt_ids, *e.ids[:i]]
        logits = full_logits(tiny, history)
        raw = logits.log_softmax(dim=-1)[0]
        assert step.chosen == e.ids[i]
        assert list(step.ids) == raw.topk(len(step.ids)).indices.tolist()
        assert step.raw_logprobs == pytest.approx(raw[list(step.ids)].tolist(), abs=1e-4)
        assert step.chosen_logprob == pytest.approx(float(raw[step.chosen]), abs=1e-4)
        assert step.entropy == pytest.approx(float(-(raw.exp() * raw).sum()), abs=1e-4)
        # The recorded "after" is over the whole vocabulary, as generate() would compute it.
        assert_logprobs_equal(list(step.after), reference_after(logits, history, SAMPLING, step.ids))
        assert step.chosen_after > -math.inf, "the sampled token survived the filters"


def test_new_slider_settings_recompute_after_like_transformers_without_the_model(tiny, monkeypatch):
    e = explore(tiny, PROMPT, SAMPLING)
    step = 3
    kept = e.steps[step]
    history = [*e.prompt_ids, *e.ids[:step]]
    # Only the kept candidates exist for the recomputation: the same vector goes to transformers.
    vector = torch.full((1, len(tiny.tokenizer) + 8), -math.inf)
    vector[0, list(kept.ids)] = torch.tensor(kept.logits)
    monkeypatch.setattr(tiny.model, "forward", None)  # the model must not run again
    for changed in (
        SAMPLING.with_(temperature=1.6, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0),
        SAMPLING.with_(temperature=0.5, top_k=4, top_p=0.95, min_p=0.0, repetition_penalty=2.0),
        SAMPLING.with_(temperature=1.2, top_k=0, top_p=0.6, min_p=0.1, repetition_penalty=1.0),
        GREEDY.with_(repetition_penalty=1.5),
    ):
        ours = after_logprobs(e, step, changed)
        assert_logprobs_equal(ours, reference_after(vector, history, changed, kept.ids))
    hot = step_candidates(
        tiny.tokenizer, e, step, SAMPLING.with_(temperature=1.6, top_k=0, top_p=1.0, min_p=0)
    )
    cold = step_candidates(
        tiny.tokenizer, e, step, SAMPLING.with_(temperature=0.3, top_k=0, top_p=1.0, min_p=0)
    )
    assert [c.raw for c in hot] == [c.raw for c in cold], "raw numbers never change"
    assert cold[0].after > hot[0].after, "a lower temperature sharpens the top candidate"
    narrow = step_candidates(
        tiny.tokenizer, e, step, SAMPLING.with_(top_k=3, top_p=1.0, min_p=0, repetition_penalty=1.0)
    )
    assert [c.removed for c in narrow] == [False] * 3 + [True] * (len(narrow) - 3)
    assert all(c.after == 0 for c in narrow if c.removed)
    assert sum(c.chosen for c in step_candidates(tiny.tokenizer, e, step)) == 1


@pytest.mark.parametrize("settings", [GREEDY.with_(max_new_tokens=12), SAMPLING.with_(max_new_tokens=12)])
def test_branching_at_the_taken_token_gives_the_same_answer(tiny, settings):
    e = explore(tiny, PROMPT, settings)
    for step in (0, 4):
        again = branch(tiny, e, step, e.ids[step])
        assert again.ids == e.ids and again.text == e.text
        assert again.branched_at == step
        assert [s.chosen for s in again.steps] == list(again.ids)


def test_branching_at_another_candidate_continues_from_it(tiny):
    e = explore(tiny, PROMPT, GREEDY.with_(max_new_tokens=12))
    step = 2
    other = next(t for t in e.steps[step].ids if t != e.ids[step])
    b = branch(tiny, e, step, other)
    assert b.ids[:step] == e.ids[:step] and b.ids[step] == other
    assert b.steps[:step] == e.steps[:step]
    assert b.steps[step].chosen == other and b.steps[step].ids == e.steps[step].ids
    assert len(b.ids) == len(b.steps) <= 12
    # What follows is what greedy decoding gives after the new prefix.
    prefix = list(e.prompt_ids) + list(b.ids[: step + 1])
    assert b.ids[step + 1] == int(full_logits(tiny, prefix).argmax())


def test_ordinary_rows_keep_nothing(tiny):
    ids = encode_prompt(tiny, PROMPT)["input_ids"][0].tolist()
    plain = engine_for(tiny).submit(Request(ids, GREEDY.with_(max_new_tokens=5))).result()
    kept = engine_for(tiny).submit(Request(ids, GREEDY.with_(max_new_tokens=5), keep_top=7)).result()
    assert plain.kept is None
    assert plain.ids == kept.ids and len(kept.kept) == len(kept.ids)
    assert all(len(s.ids) == 7 for s in kept.kept)


def test_bad_requests_get_clear_messages(tiny):
    e = explore(tiny, PROMPT, GREEDY.with_(max_new_tokens=4))
    with pytest.raises(PlaygroundError, match="Step 99"):
        branch(tiny, e, 99, e.ids[0])
    with pytest.raises(PlaygroundError, match="Step -1"):
        step_candidates(tiny.tokenizer, e, -1)
    outsider = next(t for t in range(len(tiny.tokenizer)) if t not in e.steps[0].ids)
    with pytest.raises(PlaygroundError, match="not one of step 0"):
        branch(tiny, e, 0, outsider)
    with pytest.raises(PlaygroundError, match="between 1 and"):
        explore(tiny, PROMPT, GREEDY, keep_top=10**6)
    with pytest.raises(PlaygroundError, match="beam search"):
        explore(tiny, PROMPT, GREEDY.with_(num_beams=3))
    with pytest.raises(PlaygroundError, match="temperature"):
        after_logprobs(e, 0, SAMPLING.with_(temperature=0))


def test_a_chinese_answer_comes_as_whole_characters(embedded_model):
    tok = embedded_model.tokenizer
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "請用中文寫一句關於月亮的詩。"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    e = explore(embedded_model, prompt, GREEDY.with_(max_new_tokens=16))
    pieces = answer_pieces(tok, e)
    assert "".join(p.text for p in pieces) == tok.decode(list(e.ids), skip_special_tokens=False).rstrip(
        "\ufffd"
    )
    assert any(len(p.token_ids) > 1 for p in pieces), "some character took several byte tokens"
    for p in pieces:
        lp = sum(s.chosen_logprob for s in e.steps[p.start : p.start + len(p.token_ids)])
        assert p.probability == pytest.approx(math.exp(lp))


def test_logprobs_come_with_any_generation_that_asks_and_reach_eval_json(tiny, tiny_llama, tmp_path, capsys):
    import json
    from pathlib import Path

    from playground.evaluation.cli import add_arguments, main
    from playground.generation.batch import generate_many

    [plain] = generate_many(tiny, [PROMPT], GREEDY.with_(max_new_tokens=6))
    [out] = generate_many(tiny, [PROMPT], GREEDY.with_(max_new_tokens=6), logprobs=3)
    assert plain.logprobs is None and out.text == plain.text
    assert len(out.logprobs) == out.new_tokens
    e = explore(tiny, PROMPT, GREEDY.with_(max_new_tokens=6))
    for token, step in zip(out.logprobs, e.steps, strict=True):
        assert token.token_id == step.chosen and token.logprob == pytest.approx(step.chosen_logprob, abs=1e-5)
        assert [a.token_id for a in token.top] == list(step.ids[:3])
        assert token.top[0].logprob >= token.logprob  # greedy takes the most likely
    with pytest.raises(PlaygroundError, match="0 to 20"):
        generate_many(tiny, [PROMPT], GREEDY, logprobs=999)

    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    data = Path(__file__).parents[1] / "examples" / "classical_chinese_test.json"
    common = ["--model", str(tiny_llama), "--data", str(data), "--limit", "2", "--max-new-tokens", "4"]
    args = parser.parse_args(
        [*common, "--metrics", "rouge", "--precision", "fp32", "--json", "--logprobs", "2"]
    )
    args.no_store = True
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [seed] = summary["logprobs"]
    assert len(seed["examples"]) == 2
    first = seed["examples"][0][0]
    assert set(first) == {"token", "token_id", "logprob", "top"} and len(first["top"]) == 2
    assert first["logprob"] <= 0
    args = parser.parse_args([*common, "--metrics", "perplexity", "--json", "--logprobs", "2"])
    assert main(args) == 1, "log-probabilities need a generation metric"
