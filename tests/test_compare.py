from __future__ import annotations

import csv
import json
import threading

import pytest
import torch

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
    compare_columns,
    generate_rows,
    sweep,
    with_param,
)
from playground.models import LoadOptions, load_model

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


def test_rows_join_the_engine_and_beams_reach_generate(tiny, monkeypatch):
    from playground.generation import engine

    calls, sampled = [], []
    original = tiny.model.generate
    real_draw = engine.draw_next_token

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    def draw_spy(scores, rows, *args, **kwargs):
        sampled.extend(r.settings for r in rows)
        return real_draw(scores, rows, *args, **kwargs)

    monkeypatch.setattr(tiny.model, "generate", spy)
    monkeypatch.setattr(engine, "draw_next_token", draw_spy)
    columns = [
        Column("a", HOT.with_(temperature=0.3, top_k=7, top_p=0.8, repetition_penalty=1.4)),
        Column("b", HOT.with_(no_repeat_ngram_size=2)),
        Column("greedy", GREEDY.with_(max_new_tokens=5)),
        Column("beams 3", GREEDY.with_(num_beams=3, length_penalty=0.5, max_new_tokens=4)),
        Column("beams 2", GREEDY.with_(num_beams=2, max_new_tokens=4)),
    ]
    results = compare_columns(tiny, PROMPT, columns, n_samples=2)
    assert len(calls) == 2, "each beam setting gets its own generate() call; the rest join the engine"
    assert {(s.temperature, s.top_k, s.repetition_penalty, s.no_repeat_ngram_size) for s in sampled} == {
        (0.3, 7, 1.4, 0),
        (1.3, 0, 1.0, 2),
        (GREEDY.temperature, GREEDY.top_k, 1.0, 0),
    }
    assert [r.shared_call_with for r in results] == [3, 3, 3, 1, 1]
    assert (calls[0]["num_beams"], calls[0]["length_penalty"], calls[0]["max_new_tokens"]) == (3, 0.5, 4)
    assert calls[1]["num_beams"] == 2


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


def test_entropy_per_step_only_when_asked_and_as_the_model_computes_it(tiny):
    from playground.generation.stream import encode_prompt

    columns = [
        Column("greedy", GREEDY.with_(max_new_tokens=8)),
        Column("hot", HOT.with_(max_new_tokens=8)),
        Column("beams", GREEDY.with_(num_beams=2, max_new_tokens=8)),
    ]
    plain = compare_columns(tiny, PROMPT, columns, n_samples=2, seed=3)
    traced = compare_columns(tiny, PROMPT, columns, n_samples=2, seed=3, entropy=True)
    assert all(r.entropies is None for r in plain), "an ordinary comparison keeps nothing"
    assert [r.texts for r in traced] == [r.texts for r in plain], "keeping steps changes no answer"
    greedy, hot, beams = traced
    assert beams.entropies == [None], "beam search does not decode in the engine"
    assert len(hot.entropies) == 2
    for result in (greedy, hot):
        for steps, n in zip(result.entropies, result.new_tokens, strict=True):
            assert len(steps) == n and all(e >= 0 for e in steps)
    # The greedy answer's entropies are those of the model's own next-token rows along it.
    prompt_ids = encode_prompt(tiny, PROMPT)["input_ids"][0].tolist()
    answer = tiny.tokenizer(greedy.texts[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = tiny.model(torch.tensor([prompt_ids + answer])).logits[0].float()
    logp = logits[len(prompt_ids) - 1 : -1].log_softmax(-1)
    expected = (-(logp.exp() * logp).sum(-1)).tolist()
    n = min(len(expected), len(greedy.entropies[0]))
    assert greedy.entropies[0][:n] == pytest.approx(expected[:n], abs=1e-3)


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
    assert path.parent.parent.name == "exports" and path.suffix == ".csv"
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["#", "prompt", "reference", BASE_LABEL, "poems"]
    assert rows[1] == ["1", "床前明月光", "疑是地上霜", "a, b", 'say "hi"\nbye']
    data = json.loads(export_table(table, "json").read_text(encoding="utf-8"))
    assert data["rows"][1]["poems"] == "y" and data["settings"]["seed"] == 4
    with pytest.raises(PlaygroundError, match="csv or json"):
        export_table(table, "xlsx")
    assert not any(p.name.startswith(".tmp-") for p in path.parent.iterdir())
