from __future__ import annotations

import dataclasses
import functools
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.paths import data_dir
from playground.prompts import TEMPLATES, PromptTemplate
from playground.prompts.fewshot import (
    BM25,
    FewShotBuilder,
    FewShotConfig,
    list_recipes,
    load_recipe,
    save_recipe,
    select_examples,
    shared_index,
    strategy_name,
)
from tests.tiny_models import build_tokenizer

TANG_INSTRUCTION = "以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。"
TAIWAN_SYSTEM = (
    "你是人工智慧助理，以下是用戶和人工智慧助理之間的對話。你要對用戶的問題提供有用、安全、詳細和禮貌的回答。"
)


@functools.cache
def tokenizer():
    return build_tokenizer()


def pool_of(n: int) -> list[Example]:
    return [Example(f"r{i}", f"question {i}", "", f"answer {i}") for i in range(n)]


def ids(examples: list[Example]) -> list[str]:
    return [e.id for e in examples]


QUERY = Example("q", "the query", "")

# --- selection -------------------------------------------------------------------------------


def test_first_and_last_pick_exact_rows_in_file_order():
    pool = pool_of(6)
    assert ids(select_examples(pool, QUERY, FewShotConfig(k=3, selection="first"))) == ["r0", "r1", "r2"]
    assert ids(select_examples(pool, QUERY, FewShotConfig(k=2, selection="last"))) == ["r4", "r5"]
    assert select_examples(pool, QUERY, FewShotConfig(k=0, selection="first")) == []


def test_rows_without_output_are_skipped():
    pool = [Example("a", "x", output=None), Example("b", "y", output="1"), Example("c", "z", output="2")]
    assert ids(select_examples(pool, QUERY, FewShotConfig(k=2, selection="first"))) == ["b", "c"]
    with pytest.raises(PlaygroundError, match="only 2 rows of the pool have an output"):
        select_examples(pool, QUERY, FewShotConfig(k=3, selection="first"))


def test_random_is_deterministic_per_seed_and_differs_across_seeds():
    pool = pool_of(30)
    picks = {
        seed: ids(select_examples(pool, QUERY, FewShotConfig(k=3, selection="random", seed=seed)))
        for seed in range(5)
    }
    for seed, chosen in picks.items():
        again = select_examples(pool, QUERY, FewShotConfig(k=3, selection="random", seed=seed))
        assert ids(again) == chosen
        assert len(set(chosen)) == 3
    assert len({tuple(p) for p in picks.values()}) > 1


def test_random_ignores_global_random_state():
    pool = pool_of(30)
    config = FewShotConfig(k=4, selection="random", seed=7)
    random.seed(1)
    first = ids(select_examples(pool, QUERY, config))
    random.seed(999)
    random.random()
    assert ids(select_examples(pool, QUERY, config)) == first


def test_random_draw_depends_on_query_id_reproducibly():
    pool = pool_of(30)
    config = FewShotConfig(k=3, selection="random", seed=0)
    draws = [ids(select_examples(pool, Example(f"q{i}", "the query"), config)) for i in range(6)]
    assert len({tuple(d) for d in draws}) > 1
    assert draws == [ids(select_examples(pool, Example(f"q{i}", "the query"), config)) for i in range(6)]


@pytest.mark.parametrize("selection", ["first", "last", "random", "similar", "manual"])
def test_query_is_never_its_own_example(selection):
    pool = pool_of(5)
    same_id = pool[0]
    same_text = Example("other-id", pool[4].instruction, pool[4].input)
    for query, excluded in ((same_id, "r0"), (same_text, "r4")):
        for seed in range(5):
            config = FewShotConfig(k=4, selection=selection, seed=seed, manual_ids=("r4", "r0", "r2"))
            chosen = ids(select_examples(pool, query, config))
            assert excluded not in chosen
            if selection != "manual":
                assert len(chosen) == 4
    # With the query removed only 4 rows remain.
    with pytest.raises(PlaygroundError, match="Asked for 5 examples"):
        select_examples(
            pool, same_id, FewShotConfig(k=5, selection=selection if selection != "manual" else "first")
        )


def test_similar_picks_the_english_neighbour():
    pool = [
        Example("a", "What is the capital of France?", output="Paris"),
        Example("b", "Name a colour of the sky.", output="blue"),
        Example("c", "Translate 'zebra xylophone' into German.", output="Zebra Xylophon"),
        Example("d", "What is two plus two?", output="4"),
    ]
    query = Example("q", "Please translate XYLOPHONE and Zebra.", "")
    assert ids(select_examples(pool, query, FewShotConfig(k=1, selection="similar"))) == ["c"]
    ranked = ids(select_examples(pool, query, FewShotConfig(k=4, selection="similar")))
    assert ranked[0] == "c"


def test_similar_picks_the_chinese_neighbour():
    pool = [
        Example("a", TANG_INSTRUCTION, "秦川雄帝宅，函谷壯皇居。", "綺殿千尋起"),
        Example("b", TANG_INSTRUCTION, "巖廊罷機務，崇文聊駐輦。", "玉匣啓龍圖"),
        Example("c", TANG_INSTRUCTION, "床前明月光，疑是地上霜。", "舉頭望明月"),
        Example("d", TANG_INSTRUCTION, "移步出詞林，停輿欣武宴。", "琱弓寫明月"),
    ]
    query = Example("q", TANG_INSTRUCTION, "明月照地上，霜滿床。")
    assert ids(select_examples(pool, query, FewShotConfig(k=1, selection="similar"))) == ["c"]


def test_bm25_prefers_rare_words_and_shorter_documents():
    index = BM25(["apple banana", "apple", "banana cherry durian elderberry fig apple"])
    scores = index.scores("apple cherry")
    assert scores[2] > scores[1] > 0  # cherry is rare
    scores = index.scores("apple")
    assert scores[1] > scores[0] > scores[2]  # same term, shorter text wins


def test_builder_reuses_one_index_for_similar():
    pool = pool_of(5)
    builder = FewShotBuilder(TEMPLATES["plain"], FewShotConfig(k=1, selection="similar"), pool)
    assert ids(builder.select(Example("q", "number 3"))) == ["r3"]
    index = builder._index
    assert ids(builder.select(Example("q", "number 1"))) == ["r1"]
    assert builder._index is index


def test_manual_keeps_given_order_and_sets_k():
    pool = pool_of(6)
    config = FewShotConfig(selection="manual", manual_ids=["r4", "r1", "r3"])
    assert config.k == 3 and config.manual_ids == ("r4", "r1", "r3")
    assert ids(select_examples(pool, QUERY, config)) == ["r4", "r1", "r3"]


def test_manual_unknown_id_and_missing_output_are_named():
    pool = pool_of(3) + [Example("blank", "no answer")]
    with pytest.raises(PlaygroundError, match="'nope'"):
        select_examples(pool, QUERY, FewShotConfig(selection="manual", manual_ids=("r1", "nope")))
    with pytest.raises(PlaygroundError, match="'blank' has no output"):
        select_examples(pool, QUERY, FewShotConfig(selection="manual", manual_ids=("blank",)))


def test_k_larger_than_pool_is_a_clear_error():
    with pytest.raises(PlaygroundError, match="Asked for 10 examples but the pool has only 3 rows"):
        select_examples(pool_of(3), QUERY, FewShotConfig(k=10, selection="random"))


# --- rendering of the homework prompts ---------------------------------------------------------

TANG_POOL = [
    Example("t0", TANG_INSTRUCTION, "秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。"),
    Example("t1", TANG_INSTRUCTION, "巖廊罷機務，崇文聊駐輦。", "玉匣啓龍圖，金繩披鳳篆。"),
    Example("t2", TANG_INSTRUCTION, "移步出詞林，停輿欣武宴。", "琱弓寫明月，駿馬疑流電。"),
]
TANG_QUERY = Example("test-0", TANG_INSTRUCTION, "雪霽銀妝素，桔高映瓊枝。")


def test_taiwan_llama_zero_shot():
    prompt = FewShotBuilder(TEMPLATES["taiwan-llama"], FewShotConfig(), TANG_POOL).build(TANG_QUERY)
    assert prompt == (
        "你是人工智慧助理，以下是用戶和人工智慧助理之間的對話。你要對用戶的問題提供有用、安全、詳細和禮貌的回答。"
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。雪霽銀妝素，桔高映瓊枝。 ASSISTANT:"
    )
    assert prompt == TEMPLATES["taiwan-llama"].render(TANG_QUERY.instruction, TANG_QUERY.input)


def test_taiwan_llama_two_shot_system_text_comes_first_then_examples_then_query():
    prompt = FewShotBuilder(TEMPLATES["taiwan-llama"], FewShotConfig(k=2), TANG_POOL).build(TANG_QUERY)
    assert prompt == (
        TAIWAN_SYSTEM
        + "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。秦川雄帝宅，函谷壯皇居。 ASSISTANT: "
        "綺殿千尋起，離宮百雉餘。\n"
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。巖廊罷機務，崇文聊駐輦。 ASSISTANT: "
        "玉匣啓龍圖，金繩披鳳篆。\n"
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。"
        "雪霽銀妝素，桔高映瓊枝。 ASSISTANT:"
    )


def test_template_without_system_placeholder_gets_examples_in_front():
    template = PromptTemplate("qa", "Q: {instruction}\nA:")
    prompt = FewShotBuilder(
        template, FewShotConfig(k=1, example_template="Q: {instruction}\nA: {output}"), FRENCH
    )
    assert prompt.build(Example("q", "Translate to French.", "bird")) == (
        "Q: Translate to French.\nA: chat\nQ: Translate to French.\nA:"
    )


def test_stop_strings_are_the_next_user_turn_of_template_and_examples():
    builder = FewShotBuilder(TEMPLATES["taiwan-llama"], FewShotConfig(k=2), TANG_POOL)
    assert builder.stop_strings() == ("USER:",)
    qa = FewShotBuilder(
        TEMPLATES["alpaca"],
        FewShotConfig(k=1, example_template="Q: {instruction}{input}\nA: {output}"),
        FRENCH,
    )
    assert qa.stop_strings() == ("### Instruction:", "Q:")
    assert FewShotBuilder(TEMPLATES["chat"], FewShotConfig(k=2), TANG_POOL).stop_strings() == ()
    assert FewShotBuilder(TEMPLATES["chat"], FewShotConfig(k=0), TANG_POOL).stop_strings() == ()


def test_taiwan_llama_two_shot_with_examples_placeholder_and_emotional_stimulus():
    template = PromptTemplate(
        "tw-fewshot", "{system}{examples}USER: {instruction}{input} ASSISTANT:", system=TAIWAN_SYSTEM
    )
    config = FewShotConfig(k=2, selection="last", separator=" ", system_suffix="這對我的職涯非常重要。")
    prompt = FewShotBuilder(template, config, TANG_POOL).build(TANG_QUERY)
    assert prompt == (
        "你是人工智慧助理，以下是用戶和人工智慧助理之間的對話。你要對用戶的問題提供有用、安全、詳細和禮貌的回答。"
        "這對我的職涯非常重要。"
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。巖廊罷機務，崇文聊駐輦。 ASSISTANT: "
        "玉匣啓龍圖，金繩披鳳篆。 "
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。移步出詞林，停輿欣武宴。 ASSISTANT: "
        "琱弓寫明月，駿馬疑流電。 "
        "USER: 以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。雪霽銀妝素，桔高映瓊枝。 ASSISTANT:"
    )


FRENCH = [
    Example("f0", "Translate to French.", "cat", "chat"),
    Example("f1", "Translate to French.", "dog", "chien"),
]


def test_alpaca_stablelm_one_shot():
    config = FewShotConfig(
        k=1,
        example_template="### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Output:\n{output}",
        separator="\n\n",
    )
    query = Example("q", "Translate to French.", "bird")
    prompt = FewShotBuilder(TEMPLATES["alpaca"], config, FRENCH).build(query)
    assert prompt == (
        "### Instruction:\nTranslate to French.\n\n### Input:\ncat\n\n### Output:\nchat\n\n"
        "### Instruction:\nTranslate to French.\n\n### Input:\nbird\n\n### Output:\n"
    )


def test_alpaca_english_system_gets_a_space_before_the_stimulus():
    template = PromptTemplate("a", TEMPLATES["alpaca"].text, system="You are an expert translator.\n")
    config = FewShotConfig(system_suffix="This is very important to my career.")
    prompt = FewShotBuilder(template, config, FRENCH).build(Example("q", "Translate.", "sun"))
    assert prompt.startswith(
        "You are an expert translator.\nThis is very important to my career.### Instruction:"
    )
    template = PromptTemplate("b", "{system}\n{instruction}", system="Be brief.")
    prompt = FewShotBuilder(template, config, FRENCH).build(Example("q", "Hi"))
    assert prompt == "Be brief. This is very important to my career.\nHi"


SPORTS = [
    Example(
        "s0", 'Is the following sentence plausible? "Joao Moutinho caught the screen pass."', output="no"
    ),
    Example("s1", 'Is the following sentence plausible? "Jonas Valanciunas beat the buzzer."', output="yes"),
    Example("s2", 'Is the following sentence plausible? "Sam Darnold passed the puck."', output="no"),
    Example("s3", 'Is the following sentence plausible? "Kyle Anderson shot a free throw."', output="yes"),
]


def test_bigbench_numbered_three_shot_q_a():
    template = PromptTemplate("bb", "Answer yes or no.\n\n{examples}Q: {instruction}{input}\nA:")
    config = FewShotConfig(k=3, example_template="{index}. Q: {instruction}\nA: {output}")
    query = Example("q", 'Is the following sentence plausible? "Mookie Betts hit a home run."')
    prompt = FewShotBuilder(template, config, SPORTS).build(query)
    assert prompt == (
        "Answer yes or no.\n\n"
        '1. Q: Is the following sentence plausible? "Joao Moutinho caught the screen pass."\nA: no\n'
        '2. Q: Is the following sentence plausible? "Jonas Valanciunas beat the buzzer."\nA: yes\n'
        '3. Q: Is the following sentence plausible? "Sam Darnold passed the puck."\nA: no\n'
        'Q: Is the following sentence plausible? "Mookie Betts hit a home run."\nA:'
    )


MATH_Q = Example("m", "Roger has 5 balls and buys 2 cans of 3 balls. How many balls does he have?")
WORKED = (
    "Q: A juggler has 16 balls. Half are golf balls. How many golf balls are there?\n"
    "A: Let's think step by step. Half of 16 is 8. So the answer is 8."
)


def test_zero_shot_cot_adds_only_the_trigger():
    template = PromptTemplate("qa", "Q: {instruction}\nA:")
    prompt = FewShotBuilder(template, FewShotConfig(cot=True), []).build(MATH_Q)
    assert prompt == (
        "Q: Roger has 5 balls and buys 2 cans of 3 balls. How many balls does he have?\nA: Let's think step by step."
    )
    prompt = FewShotBuilder(TEMPLATES["alpaca"], FewShotConfig(cot=True), []).build(MATH_Q)
    assert prompt.endswith("### Output:\nLet's think step by step.")


def test_cot_with_worked_example():
    template = PromptTemplate("qa", "Q: {instruction}\nA:")
    config = FewShotConfig(cot=True, cot_example=WORKED, separator="\n\n")
    prompt = FewShotBuilder(template, config, []).build(MATH_Q)
    assert prompt == (
        "Q: A juggler has 16 balls. Half are golf balls. How many golf balls are there?\n"
        "A: Let's think step by step. Half of 16 is 8. So the answer is 8.\n\n"
        "Q: Roger has 5 balls and buys 2 cans of 3 balls. How many balls does he have?\n"
        "A: Let's think step by step."
    )
    # The worked example is only used when chain of thought is on.
    plain = FewShotBuilder(template, dataclasses.replace(config, cot=False), []).build(MATH_Q)
    assert plain == "Q: Roger has 5 balls and buys 2 cans of 3 balls. How many balls does he have?\nA:"


def test_cot_on_taiwan_llama_puts_trigger_after_assistant():
    config = FewShotConfig(cot=True, cot_trigger="讓我們一步一步思考。")
    prompt = FewShotBuilder(TEMPLATES["taiwan-llama"], config, []).build(TANG_QUERY)
    assert prompt.endswith("雪霽銀妝素，桔高映瓊枝。 ASSISTANT: 讓我們一步一步思考。")


def test_chat_template_alternates_user_and_assistant_turns():
    template = PromptTemplate("chat", None, system="You are helpful.")
    config = FewShotConfig(k=2, system_suffix="This is very important to my career.")
    pool = [Example("c0", "Add.", "1+1", "2"), Example("c1", "Say hi.", "", "hi")]
    prompt = FewShotBuilder(template, config, pool).build(Example("q", "Add.", "2+3"), tokenizer())
    assert prompt == (
        "<|system|>You are helpful. This is very important to my career.</s>"
        "<|user|>Add.\n\n1+1</s><|assistant|>2</s>"
        "<|user|>Say hi.</s><|assistant|>hi</s>"
        "<|user|>Add.\n\n2+3</s><|assistant|>"
    )
    # Without a tokenizer: the plain fallback of templates.render_chat.
    assert FewShotBuilder(template, config, pool).build(Example("q", "Add.", "2+3")) == (
        "System: You are helpful. This is very important to my career.\n"
        "User: Add.\n\n1+1\nAssistant: 2\nUser: Say hi.\nAssistant: hi\nUser: Add.\n\n2+3\nAssistant:"
    )


def test_chat_zero_shot_matches_template_render():
    query = Example("q", "床前明月光", "下一句？")
    built = FewShotBuilder(TEMPLATES["chat"], FewShotConfig(), []).build(query, tokenizer())
    assert built == TEMPLATES["chat"].render(query.instruction, query.input, tokenizer=tokenizer())


def test_chat_cot_worked_example_becomes_a_turn_pair():
    config = FewShotConfig(cot=True, cot_example=WORKED)
    prompt = FewShotBuilder(TEMPLATES["chat"], config, []).build(MATH_Q, tokenizer())
    assert prompt == (
        "<|user|>Q: A juggler has 16 balls. Half are golf balls. How many golf balls are there?\nA:</s>"
        "<|assistant|>Let's think step by step. Half of 16 is 8. So the answer is 8.</s>"
        "<|user|>Roger has 5 balls and buys 2 cans of 3 balls. How many balls does he have?</s>"
        "<|assistant|> Let's think step by step."
    )


def test_chat_template_without_system_role_gets_it_in_the_first_user_turn():
    tok = build_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
        "{% endif %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    template = PromptTemplate("chat", None, system="Be kind.")
    prompt = FewShotBuilder(template, FewShotConfig(k=1), FRENCH).build(Example("q", "Hi"), tok)
    assert prompt == "[user]Be kind.\n\nTranslate to French.\n\ncat[assistant]chat[user]Hi[assistant]"
    # Without a system text the template's own error is reported as a PlaygroundError.
    tok.chat_template = "{{ raise_exception('broken template') }}"
    with pytest.raises(PlaygroundError, match="broken template"):
        FewShotBuilder(TEMPLATES["chat"], FewShotConfig(), []).build(Example("q", "Hi"), tok)


def test_build_pair_returns_reference():
    builder = FewShotBuilder(TEMPLATES["plain"], FewShotConfig(k=1), FRENCH)
    assert builder.build_pair(Example("q", "Translate: ", "sun", "soleil")) == (
        "USER: Translate to French.cat ASSISTANT: chat\nTranslate: sun",
        "soleil",
    )
    with pytest.raises(PlaygroundError, match="no reference"):
        builder.build_pair(Example("q", "Translate: ", "sun"))


# --- preview and token budget --------------------------------------------------------------


def test_budget_warning_appears_exactly_when_over_context():
    tok = tokenizer()
    builder = FewShotBuilder(TEMPLATES["taiwan-llama"], FewShotConfig(k=2), TANG_POOL)
    roomy = builder.preview(TANG_QUERY, tok, context_length=100_000, max_new_tokens=50)
    n = len(tok(roomy.text, add_special_tokens=False)["input_ids"])
    assert roomy.n_tokens == n > 50
    assert roomy.warning is None and not roomy.exceeds
    assert roomy.example_ids == ("t0", "t1")

    exact = builder.preview(TANG_QUERY, tok, context_length=n + 50, max_new_tokens=50)
    assert not exact.exceeds
    assert "exceeds" not in exact.warning and "100%" in exact.warning  # the softer warning

    over = builder.preview(TANG_QUERY, tok, context_length=n + 49, max_new_tokens=50)
    assert over.exceeds
    assert over.warning.startswith(
        f"The prompt has {n} tokens; with 50 new tokens it exceeds the model's context of {n + 49} tokens"
    )
    no_new = builder.preview(TANG_QUERY, tok, context_length=n - 1)
    assert no_new.warning.startswith(f"The prompt has {n} tokens; it exceeds the model's context of {n - 1}")
    assert builder.preview(TANG_QUERY, tok, context_length=int(n / 0.9) + 1).warning is None


# --- config, strategy names and recipes ------------------------------------------------------


def test_strategy_names():
    assert strategy_name(FewShotConfig()) == "zero-shot"
    assert strategy_name(FewShotConfig(k=3, selection="random")) == "k-shot"
    assert strategy_name(FewShotConfig(selection="manual", manual_ids=("a",))) == "k-shot"
    assert strategy_name(FewShotConfig(cot=True)) == "cot"
    assert strategy_name(FewShotConfig(k=2, cot=True, cot_example=WORKED)) == "cot"


@pytest.mark.parametrize(
    "bad",
    [
        {"k": -1},
        {"k": 1.5},
        {"selection": "best"},
        {"seed": "x"},
        {"manual_ids": "r1,r2"},
        {"separator": None},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(PlaygroundError):
        FewShotConfig(**bad)


def test_config_dict_round_trip_through_json():
    config = FewShotConfig(k=3, selection="random", seed=2, cot=True, cot_example=WORKED, system_suffix="!")
    data = json.loads(json.dumps(config.to_dict()))
    assert FewShotConfig.from_dict(data) == config
    assert FewShotConfig.from_dict({**data, "added_later": 1}) == config


def test_recipes_round_trip_and_listing():
    template = PromptTemplate("custom", "{system}{examples}Q: {instruction}\nA:", system="系統", notes="n")
    config = FewShotConfig(selection="manual", manual_ids=("s2", "s0"), separator="\n\n")
    path = save_recipe("BIG-bench 2-shot", template, config)
    assert path == data_dir() / "recipes" / "BIG-bench 2-shot.json"
    save_recipe("唐詩 3-shot", TEMPLATES["taiwan-llama"], FewShotConfig(k=3, selection="similar"))
    (path.parent / ".tmp-half.json").write_text("{")
    assert list_recipes() == ["BIG-bench 2-shot", "唐詩 3-shot"]

    recipe = load_recipe("BIG-bench 2-shot")
    assert (recipe.name, recipe.template, recipe.config) == ("BIG-bench 2-shot", template, config)
    assert load_recipe("唐詩 3-shot").template == TEMPLATES["taiwan-llama"]

    save_recipe("BIG-bench 2-shot", template, FewShotConfig(k=1))
    assert load_recipe("BIG-bench 2-shot").config == FewShotConfig(k=1)


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "a\\b", "..", ".hidden", "", "   ", "x" * 101, "a..b", "n\x00"]
)
def test_bad_recipe_names_are_rejected(name):
    with pytest.raises(PlaygroundError, match="cannot be a recipe name"):
        save_recipe(name, TEMPLATES["plain"], FewShotConfig())
    assert not any(data_dir().rglob("*.json"))


def test_missing_and_damaged_recipes_are_user_errors():
    with pytest.raises(PlaygroundError, match="No recipe named 'nothing'"):
        load_recipe("nothing")
    path = save_recipe("broken", TEMPLATES["plain"], FewShotConfig())
    path.write_text("{not json")
    with pytest.raises(PlaygroundError, match="damaged"):
        load_recipe("broken")
    path.write_text(json.dumps({"template": {"name": "p", "text": "{instruction}"}, "config": {"k": -3}}))
    with pytest.raises(PlaygroundError, match="bad setting"):
        load_recipe("broken")


# --- property: user text always arrives verbatim -----------------------------------------------

TRICKY = st.lists(
    st.sampled_from(
        [
            "{instruction}",
            "{input}",
            "{output}",
            "{system}",
            "{examples}",
            "{index}",
            "{",
            "}",
            "a",
            "床",
            " ",
        ]
    ),
    max_size=6,
).map("".join)
TEXT = st.one_of(TRICKY, st.text(max_size=20))
TEMPLATE_CHOICES = [
    TEMPLATES["taiwan-llama"],
    TEMPLATES["alpaca"],
    TEMPLATES["plain"],
    PromptTemplate("ex", "{system}\n{examples}Q: {instruction} {input}\nA:"),
    TEMPLATES["chat"],
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(TEXT, min_size=9, max_size=9),
    template=st.sampled_from(TEMPLATE_CHOICES),
    use_tokenizer=st.booleans(),
    cot=st.booleans(),
)
def test_rendering_never_raises_and_keeps_user_text_verbatim(texts, template, use_tokenizer, cot):
    system, ex_instr, ex_input, ex_output, q_instr, q_input, worked, suffix, sep = texts
    template = dataclasses.replace(template, system=system)
    pool = [Example("e1", ex_instr, ex_input, ex_output), Example("e2", ex_instr + "2", ex_input, ex_output)]
    config = FewShotConfig(k=1, cot=cot, cot_example=worked or None, system_suffix=suffix, separator=sep)
    builder = FewShotBuilder(template, config, pool)
    query = Example("q", q_instr, q_input)
    prompt = builder.build(query, tokenizer() if use_tokenizer else None)
    [shown] = builder.select(query)
    user_texts = [q_instr, q_input, shown.instruction, shown.input, ex_output]
    if template.text is None or "{system}" in template.text:
        user_texts += [system, suffix]
    if cot and worked:
        user_texts.append(worked)
    for text in user_texts:
        assert text in prompt


# --- the real homework data ----------------------------------------------------------------------


def test_similar_on_tang_training_data_finds_the_near_duplicate(shared_dir):
    rows = json.loads(
        (shared_dir / "datasets/tang-poems/Tang_training_data.json").read_text(encoding="utf-8")
    )
    pool = [Example(f"train-{i}", r["instruction"], r["input"], r["output"]) for i, r in enumerate(rows)]
    target = next(e for e in pool[100:] if sum(o.input == e.input for o in pool) == 1)
    # The same first line with different punctuation: same characters, not the same text.
    near = Example("test-x", target.instruction, target.input.replace("，", "、"))
    builder = FewShotBuilder(TEMPLATES["taiwan-llama"], FewShotConfig(k=3, selection="similar"), pool)
    chosen = builder.select(near)
    assert chosen[0].id == target.id
    exact = Example("test-y", target.instruction, target.input)
    assert target.id not in ids(builder.select(exact))
    prompt = builder.build(near)
    assert prompt.count("USER: ") == 4 and prompt.endswith(f"{near.input} ASSISTANT:")


def test_shared_ids_between_train_and_test_files_do_not_exclude_rows():
    # Two files numbered 1..N share ids but not rows: "first 2" takes training rows 1 and 2.
    train = [Example(str(i), f"train question {i}", output=f"a{i}") for i in range(1, 5)]
    query = Example("1", "test question 1")
    picked = select_examples(train, query, FewShotConfig(k=2, selection="first"))
    assert [e.id for e in picked] == ["1", "2"]


def test_builders_with_the_same_pool_key_share_one_bm25_index():
    pool = [Example(f"p{i}", f"question about {word}", "", "yes") for i, word in enumerate("abcdefgh")]
    query = Example("q", "which is c", "", "yes")
    config = FewShotConfig(k=1, selection="similar")
    builders = [FewShotBuilder(TEMPLATES["plain"], config, pool, index_key=("pool", i % 2)) for i in range(3)]
    assert [e.id for e in builders[0].select(query)] == ["p2"]
    builders[1].select(query)
    builders[2].select(query)
    assert builders[0]._index is builders[2]._index is shared_index(("pool", 0), pool)
    assert builders[1]._index is not builders[0]._index

    # Only the most recent pools are kept; an old key gets a new index.
    first = shared_index(("pool", 0), pool)
    for n in range(5):
        shared_index(("other", n), pool)
    assert shared_index(("pool", 0), pool) is not first
