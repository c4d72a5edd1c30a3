from __future__ import annotations

import csv
import json
import threading

import pytest
import torch
from transformers import (
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.errors import Cancelled, PlaygroundError
from playground.generation import GREEDY, DecodingSettings, generate_text
from playground.generation.adapter_compare import (
    BASE_LABEL,
    ComparisonTable,
    TableRow,
    attach_adapters,
    compare_adapters,
    export_table,
    restoring_adapters,
)
from playground.generation.compare import (
    Column,
    RowRequest,
    RowSettingsProcessor,
    compare_columns,
    generate_rows,
    sweep,
    with_param,
)
from playground.models import LoadOptions, load_model
from tests.helpers import generate_reference

PROMPT = "The quick brown fox"
HOT = DecodingSettings(temperature=1.3, top_p=1.0, top_k=0, max_new_tokens=12)


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def _sampling_columns() -> list[Column]:
    return [
        Column("hot", HOT),
        Column("top-k 10", HOT.with_(temperature=0.9, top_k=10)),
        Column("top-p 0.5", HOT.with_(temperature=1.0, top_p=0.5)),
    ]


def _texts(results) -> list[list[str]]:
    return [r.texts for r in results]


def test_same_seed_same_texts_other_seed_differs(tiny):
    a = compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=2, seed=3)
    b = compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=2, seed=3)
    c = compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=2, seed=4)
    assert _texts(a) == _texts(b)
    assert _texts(a) != _texts(c)
    assert all(len(r.texts) == 2 for r in a)
    # The draws of one column are different samples, not copies.
    assert a[0].texts[0] != a[0].texts[1]
    assert all(r.settings.seed == 3 for r in a)


def test_column_text_does_not_depend_on_its_batch_companions(tiny):
    together = compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=2, seed=9)
    alone = compare_columns(tiny, PROMPT, _sampling_columns()[1:2], n_samples=2, seed=9)
    separate = compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=2, seed=9, batched=False)
    assert together[1].texts == alone[0].texts
    assert _texts(together) == _texts(separate)
    assert [r.shared_call_with for r in together] == [3, 3, 3]
    assert [r.shared_call_with for r in separate] == [1, 1, 1]


def test_greedy_rows_in_a_batch_equal_single_runs(tiny):
    prompts = ["The quick brown fox", "床前明月光", "Question: Is the following sentence plausible?"]
    settings = GREEDY.with_(max_new_tokens=10)
    rows = generate_rows(tiny, [RowRequest(p, settings) for p in prompts])
    for prompt, row in zip(prompts, rows):
        single = generate_text(tiny, prompt, settings)
        assert row.text == single.text
        assert row.new_tokens == single.new_tokens
        assert row.prompt_tokens == single.prompt_tokens
    # A greedy column mixed with sampling columns and other limits is still the plain greedy run.
    columns = [Column("greedy", GREEDY.with_(max_new_tokens=6)), *_sampling_columns()]
    result = compare_columns(tiny, PROMPT, columns, n_samples=3)
    assert result[0].texts == [generate_text(tiny, PROMPT, GREEDY.with_(max_new_tokens=6)).text]
    assert result[0].new_tokens[0] <= 6 and all(n <= 12 for n in result[1].new_tokens)
    # Peak memory is measured on CUDA only.
    assert (result[0].peak_memory_mb is None) == (tiny.device == "cpu")


def test_settings_reach_generate(tiny, monkeypatch):
    calls = []
    original = tiny.model.generate

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(tiny.model, "generate", spy)
    columns = [
        Column("a", HOT.with_(temperature=0.3, top_k=7, top_p=0.8, repetition_penalty=1.4)),
        Column("b", HOT.with_(no_repeat_ngram_size=2)),
        Column("greedy", GREEDY.with_(max_new_tokens=5)),
        Column("beams 3", GREEDY.with_(num_beams=3, length_penalty=0.5, max_new_tokens=4)),
        Column("beams 2", GREEDY.with_(num_beams=2, max_new_tokens=4)),
    ]
    compare_columns(tiny, PROMPT, columns, n_samples=2)
    assert len(calls) == 3, "non-beam columns share one call; each beam setting gets its own"
    (processor,) = calls[0]["logits_processor"]
    assert isinstance(processor, RowSettingsProcessor)
    assert calls[0]["input_ids"].shape[0] == 5  # 2 + 2 draws + 1 greedy row
    assert processor.temperature.tolist()[:2] == pytest.approx([0.3, 0.3])
    assert processor.top_k.tolist() == [7, 7, 0, 0, 0]
    assert processor.top_p.tolist()[:2] == pytest.approx([0.8, 0.8])
    assert processor.penalty.tolist() == pytest.approx([1.4, 1.4, 1.0, 1.0, 1.0])
    assert processor.ngram == [0, 0, 2, 2, 0]
    assert processor.sample.tolist() == [True, True, True, True, False]
    assert calls[0]["max_new_tokens"] == 12
    assert (calls[1]["num_beams"], calls[1]["length_penalty"], calls[1]["max_new_tokens"]) == (3, 0.5, 4)
    assert calls[2]["num_beams"] == 2


def test_encoder_decoder_columns(tiny_t5):
    t5 = load_model(str(tiny_t5), LoadOptions(precision="fp32"))
    columns = [Column("greedy", GREEDY.with_(max_new_tokens=6)), *_sampling_columns()]
    a = compare_columns(t5, "translate: hello there", columns, n_samples=2, seed=1)
    b = compare_columns(t5, "translate: hello there", columns, n_samples=2, seed=1)
    assert _texts(a) == _texts(b)
    assert a[0].texts == [generate_text(t5, "translate: hello there", GREEDY.with_(max_new_tokens=6)).text]
    assert a[0].new_tokens[0] <= 6 and all(1 <= n <= 12 for r in a[1:] for n in r.new_tokens)
    assert a[1].texts[0] != a[1].texts[1]


def test_top_k_one_sampling_is_greedy(tiny):
    # A behavioural check that each row's top-k is applied: with k = 1 sampling has one choice.
    columns = [Column("k1", HOT.with_(top_k=1)), Column("greedy", GREEDY.with_(max_new_tokens=12))]
    k1, greedy = compare_columns(tiny, PROMPT, columns, n_samples=3, seed=1)
    assert k1.texts == greedy.texts * 3


def _hf_warp(row: torch.Tensor, s: DecodingSettings) -> torch.Tensor:
    ids = torch.zeros((1, 1), dtype=torch.long)
    out = row[None].clone()
    if s.temperature != 1.0:
        out = TemperatureLogitsWarper(s.temperature)(ids, out)
    if s.top_k:
        out = TopKLogitsWarper(s.top_k)(ids, out)
    if s.top_p < 1.0:
        out = TopPLogitsWarper(s.top_p)(ids, out)
    return out[0]


def test_row_warping_matches_transformers_warpers():
    torch.manual_seed(0)
    settings = [
        DecodingSettings(temperature=0.1, top_p=0.3),
        DecodingSettings(temperature=1.2, top_k=10, top_p=0.9),
        DecodingSettings(temperature=0.7, top_k=0, top_p=1.0),
        DecodingSettings(temperature=2.0, top_k=3, top_p=1.0),
        DecodingSettings(temperature=1.0, top_k=0, top_p=0.05),
    ]
    logits = torch.randn(len(settings), 300) * 3
    warped = RowSettingsProcessor(settings, [0] * len(settings), [0] * len(settings)).warp(logits.clone())
    for i, s in enumerate(settings):
        expected = _hf_warp(logits[i], s)
        assert torch.equal(torch.isinf(warped[i]), torch.isinf(expected)), s
        assert torch.allclose(warped[i].softmax(-1), expected.softmax(-1), atol=1e-6), s


def test_row_penalties_match_transformers_and_ignore_padding():
    torch.manual_seed(1)
    vocab = 20
    settings = [
        GREEDY.with_(repetition_penalty=1.5, no_repeat_ngram_size=2),
        GREEDY.with_(repetition_penalty=0.8, no_repeat_ngram_size=3),
        GREEDY.with_(no_repeat_ngram_size=1),
        GREEDY,
    ]
    ids = torch.randint(0, vocab, (len(settings), 15))
    ids[:, -3:] = ids[:, 3:6]  # repeated n-grams, so something is banned
    scores = torch.randn(len(settings), vocab)
    processor = RowSettingsProcessor(settings, [0] * 4, [0] * 4)
    ours = processor.ban_ngrams(ids, processor.penalize(ids, scores))
    for i, s in enumerate(settings):
        expected = scores[i : i + 1].clone()
        if s.repetition_penalty != 1.0:
            expected = RepetitionPenaltyLogitsProcessor(s.repetition_penalty)(ids[i : i + 1], expected)
        if s.no_repeat_ngram_size:
            expected = NoRepeatNGramLogitsProcessor(s.no_repeat_ngram_size)(ids[i : i + 1], expected)
        assert torch.equal(ours[i], expected[0]), s
    assert torch.isinf(ours[:3]).any(dim=1).all()
    # Left padding (token 0 here) counts for neither penalty.
    pad = torch.zeros((len(settings), 4), dtype=torch.long)
    padded = RowSettingsProcessor(settings, [0] * 4, [4] * 4)
    both = torch.cat([pad, ids], dim=1)
    assert torch.equal(padded.ban_ngrams(both, padded.penalize(both, scores)), ours)


def test_row_draws_follow_the_warped_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    settings = [DecodingSettings(temperature=1.5, top_k=4, top_p=1.0)]
    processor = RowSettingsProcessor(settings, [7], [0])
    probs = processor.warp(logits).softmax(-1)[0]
    draws = torch.tensor([int(processor.draw(processor.warp(logits))) for _ in range(6000)])
    freq = torch.bincount(draws, minlength=6).float() / len(draws)
    assert freq[4:].sum() == 0, "top-k removed the two least likely tokens"
    assert torch.allclose(freq, probs, atol=0.025)
    again = RowSettingsProcessor(settings, [7], [0])
    assert [int(again.draw(again.warp(logits))) for _ in range(50)] == draws[:50].tolist()


def test_sweep_measures_diversity_length_and_perplexity(tiny):
    base = HOT.with_(max_new_tokens=10)
    cold, hot = sweep(tiny, PROMPT, base, "temperature", [0.05, 3.0], n_samples=4)
    assert (cold.value, hot.value) == (0.05, 3.0)
    assert len(cold.texts) == len(hot.texts) == 4
    assert hot.mean_perplexity > cold.mean_perplexity > 0
    assert 0 < cold.mean_length <= 10
    # top-k 1 makes every draw the same text, so each distinct token is counted 4 times.
    same, free = sweep(tiny, PROMPT, base, "top_k", [1, 0], n_samples=4)
    assert len(set(same.texts)) == 1 and len(set(free.texts)) == 4
    assert free.distinct_1 > same.distinct_1 > 0
    assert 0 <= same.distinct_2 <= free.distinct_2 <= 1


def test_with_param():
    assert with_param(HOT, "temperature", 0).mode == "greedy"
    assert with_param(GREEDY, "temperature", 0.5).do_sample
    assert with_param(GREEDY, "num_beams", 3.0).num_beams == 3
    with pytest.raises(PlaygroundError, match="whole numbers"):
        with_param(GREEDY, "top_k", 2.5)
    with pytest.raises(PlaygroundError, match="Cannot sweep"):
        with_param(GREEDY, "seed", 1)


def test_clear_errors(tiny):
    with pytest.raises(PlaygroundError, match="at least one column"):
        compare_columns(tiny, PROMPT, [])
    with pytest.raises(PlaygroundError, match="Samples per column"):
        compare_columns(tiny, PROMPT, _sampling_columns(), n_samples=0)
    with pytest.raises(PlaygroundError, match="Column bad: .*top-p"):
        compare_columns(tiny, PROMPT, [Column("bad", HOT.with_(top_p=0))])
    with pytest.raises(PlaygroundError, match="context"):
        compare_columns(tiny, PROMPT, [Column("long", HOT.with_(max_new_tokens=10_000))])


def test_stop_cancels(tiny):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        compare_columns(tiny, PROMPT, _sampling_columns(), stop=stop)


@pytest.fixture
def lora_folder(tiny_llama, tmp_path):
    """A LoRA adapter for the tiny model with random, non-zero B matrices."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path / "poems-lora"
    peft_model.save_pretrained(folder)
    return folder


def test_base_and_adapter_columns(tiny_llama, lora_folder):
    from peft import PeftModel

    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    prompts = ["The quick brown fox", "床前明月光", "Summarize the dialogue."]
    settings = DecodingSettings(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8, seed=2)
    before = compare_adapters(loaded, prompts, [None], settings, batch_size=2)
    with restoring_adapters(loaded):
        names = attach_adapters(loaded, [lora_folder])
        assert names == ["poems-lora"]
        table = compare_adapters(
            loaded, prompts, [None, *names], settings, references=["a", None, "c"], batch_size=2
        )
    assert not isinstance(loaded.model, PeftModel), "the comparison leaves the model as it found it"
    assert table.columns == [BASE_LABEL, "poems-lora"]
    base = [r.outputs[0] for r in table.rows]
    adapter = [r.outputs[1] for r in table.rows]
    assert base == [r.outputs[0] for r in before.rows], "base column = the model without the adapter"
    assert base != adapter
    assert table.header() == ["#", "prompt", "reference", BASE_LABEL, "poems-lora"]
    assert table.records()[1][:3] == ["2", "床前明月光", ""]
    # The same prompts alone give the same texts: batching does not change a row.
    alone = compare_adapters(loaded, prompts[:1], [None], settings)
    assert alone.rows[0].outputs == before.rows[0].outputs


def test_unknown_adapter_is_a_clear_error(tiny):
    with pytest.raises(PlaygroundError, match="not loaded"):
        compare_adapters(tiny, ["hi"], [None, "missing"], GREEDY.with_(max_new_tokens=2))
    with pytest.raises(PlaygroundError, match="only once"):
        compare_adapters(tiny, ["hi"], [None, None], GREEDY)


def test_export_csv_and_json(tmp_path):
    table = ComparisonTable(
        columns=[BASE_LABEL, "poems"],
        rows=[
            TableRow("床前明月光", "疑是地上霜", ["a, b", 'say "hi"\nbye']),
            TableRow("x", None, ["", "y"]),
        ],
        settings=GREEDY.with_(seed=4),
    )
    path = export_table(table, "csv")
    assert path.parent.name == "exports" and path.suffix == ".csv"
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["#", "prompt", "reference", BASE_LABEL, "poems"]
    assert rows[1] == ["1", "床前明月光", "疑是地上霜", "a, b", 'say "hi"\nbye']
    data = json.loads(export_table(table, "json").read_text(encoding="utf-8"))
    assert data["rows"][1]["poems"] == "y" and data["settings"]["seed"] == 4
    with pytest.raises(PlaygroundError, match="csv or json"):
        export_table(table, "xlsx")
    assert not any(p.name.startswith(".tmp-") for p in path.parent.iterdir())


def _use_rows_loop(monkeypatch) -> list[int]:
    """From here on, rows run through the batched fast loop as on a GPU (eager steps on CPU).

    Returns the row count of each call to it.
    """
    from playground.generation import fast_decode

    calls: list[int] = []
    real = fast_decode.decode_rows

    def spy(model, input_ids, choose, limits, *args, **kwargs):
        calls.append(len(limits))
        return real(model, input_ids, choose, limits, *args, **kwargs)

    monkeypatch.setattr(fast_decode, "rows_unsupported_reason", lambda *a, **k: None)
    monkeypatch.setattr(fast_decode, "decode_rows", spy)
    return calls


def test_fast_rows_give_generates_texts(tiny, monkeypatch):
    columns = [
        Column("greedy", GREEDY.with_(max_new_tokens=6)),
        *_sampling_columns(),
        Column("penalties", HOT.with_(repetition_penalty=1.5, no_repeat_ngram_size=2, max_new_tokens=9)),
        # Plain greedy repeats one token on this prompt, so these two depend on every past token.
        Column("no-repeat", GREEDY.with_(no_repeat_ngram_size=2, max_new_tokens=10)),
        Column("penalty", GREEDY.with_(repetition_penalty=3.0, max_new_tokens=10)),
    ]
    plain = compare_columns(tiny, PROMPT, columns, n_samples=2, seed=5)
    calls = _use_rows_loop(monkeypatch)
    fast = compare_columns(tiny, PROMPT, columns, n_samples=2, seed=5)
    assert calls == [11]  # 3 greedy rows + 4 columns x 2 draws, in one call
    assert _texts(fast) == _texts(plain)
    assert [r.new_tokens for r in fast] == [r.new_tokens for r in plain]
    assert fast[0].new_tokens == [6] and fast[4].new_tokens == [9, 9]
    # One column alone gives its texts from the grid.
    alone = compare_columns(tiny, PROMPT, columns[2:3], n_samples=2, seed=5)
    assert alone[0].texts == fast[2].texts and calls[-1] == 2
    greedy = compare_columns(tiny, PROMPT, columns[:1])
    assert greedy[0].texts == fast[0].texts and calls[-1] == 1
    assert len(set(fast[5].texts[0])) > 2  # the no-repeat row did not repeat its one token
    # Grids of up to 4 rows share one 4-row runner, apart from chat's one-row runner.
    assert tiny.model._playground_fast_rows.rows == 4
    assert getattr(tiny.model, "_playground_fast_decode", None) is None


def test_fast_rows_hold_eos_back_for_min_new_tokens_like_generate(tiny, monkeypatch):
    from playground.generation.stream import encode_prompt

    prompt = "Once upon a time"  # its greedy answer does not repeat one token
    ids = encode_prompt(tiny, prompt)["input_ids"]
    greedy = generate_reference(tiny, ids, GREEDY.with_(max_new_tokens=6))
    gen = tiny.model.generation_config
    # The first token of the greedy answer not seen before in it becomes the end of the answer.
    k = next(k for k in range(1, len(greedy)) if greedy[k] not in greedy[:k])
    monkeypatch.setattr(gen, "eos_token_id", greedy[k])
    columns = [Column("greedy", GREEDY.with_(max_new_tokens=8)), Column("hot", HOT.with_(max_new_tokens=8))]
    plain = {}
    for min_new in (None, k + 2):
        monkeypatch.setattr(gen, "min_new_tokens", min_new)
        plain[min_new] = compare_columns(tiny, prompt, columns, n_samples=2, seed=2)
    assert plain[None][0].new_tokens == [k + 1] and plain[k + 2][0].new_tokens[0] > k + 2
    calls = _use_rows_loop(monkeypatch)
    for min_new in (None, k + 2):
        monkeypatch.setattr(gen, "min_new_tokens", min_new)
        fast = compare_columns(tiny, prompt, columns, n_samples=2, seed=2)
        assert _texts(fast) == _texts(plain[min_new])
        assert [r.new_tokens for r in fast] == [r.new_tokens for r in plain[min_new]]
    assert calls == [3, 3]


def test_rows_of_different_prompts_or_beams_keep_generate(tiny, monkeypatch):
    prompts = ["The quick brown fox", "床前明月光"]
    plain = generate_rows(tiny, [RowRequest(p, GREEDY.with_(max_new_tokens=5)) for p in prompts])
    calls = _use_rows_loop(monkeypatch)
    again = generate_rows(tiny, [RowRequest(p, GREEDY.with_(max_new_tokens=5)) for p in prompts])
    assert [r.text for r in again] == [r.text for r in plain]
    compare_columns(tiny, PROMPT, [Column("beams", GREEDY.with_(num_beams=2, max_new_tokens=4))])
    assert calls == []


def test_rows_sharing_a_seed_share_one_generator():
    logits = torch.randn(3, 50)
    settings = [DecodingSettings(temperature=1.0, top_k=0, top_p=1.0)] * 3
    shared = RowSettingsProcessor(settings, [4, 4, 9], [0, 0, 0])
    alone = [RowSettingsProcessor(settings[:1], [seed], [0]) for seed in (4, 4, 9)]
    for _ in range(5):
        got = shared.draw(logits).tolist()
        assert got == [int(p.draw(logits[i : i + 1])) for i, p in enumerate(alone)]
    assert len(shared._generators) == 2
