"""EleutherAI's lm-evaluation-harness scores the playground's model through the API, offline on
local task files: `local-completions` (log-likelihoods of choices) and `local-chat-completions`
(generated answers); its numbers and answers are the model's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.api_server import serve

lm_eval = pytest.importorskip(
    "lm_eval", reason="lm-eval is not installed: make test installs it (requirements-dev.txt)"
)

ROOT = Path(__file__).resolve().parents[1]


def _loglikelihood(loaded, context: str, continuation: str) -> float:
    """Sum of the continuation's token logprobs given the context, tokenized as the harness does."""
    tok = loaded.tokenizer
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    n_context = len(tok(context, add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        logp = loaded.model(input_ids=torch.tensor([whole])).logits[0].float().log_softmax(-1)
    return sum(logp[i - 1, whole[i]].item() for i in range(n_context, len(whole)))


@pytest.fixture
def served(monkeypatch, tmp_path):
    """The app on the embedded model with an API key, as the harness sees it (offline)."""
    from playground.models import EMBEDDED_KEY

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("PLAYGROUND_API_KEYS", "student-key:alice")
    monkeypatch.setenv("OPENAI_API_KEY", "student-key")
    monkeypatch.chdir(ROOT)  # the task's data_files path is relative to the repository root
    app = serve(EMBEDDED_KEY)
    yield app
    app.demo.close()


def test_lm_eval_local_completions_scores_a_local_task(served):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    loaded = served.ctx.models.current
    results = simple_evaluate(
        model="local-completions",
        model_args={
            "model": served.model,
            "base_url": f"{served.base_url}/completions",
            "tokenizer_backend": "huggingface",
            "tokenizer": loaded.source,
            "tokenized_requests": True,
            "num_concurrent": 1,
            "max_retries": 1,
        },
        tasks=["playground_capitals"],
        task_manager=TaskManager(include_path=str(ROOT / "examples" / "lm_eval")),
        log_samples=True,
        batch_size=1,
    )
    samples = results["samples"]["playground_capitals"]
    assert len(samples) == 5
    correct = 0
    for sample in samples:
        doc = sample["doc"]
        context = f"Question: {doc['question']}\nAnswer:"
        mine = [_loglikelihood(loaded, context, " " + choice) for choice in doc["choices"]]
        theirs = [float(r[0]) for r in sample["filtered_resps"]]
        assert theirs == pytest.approx(mine, abs=2e-3)
        correct += int(max(range(len(mine)), key=mine.__getitem__) == doc["answer"])
    assert results["results"]["playground_capitals"]["acc,none"] == pytest.approx(correct / 5)


def test_lm_eval_local_chat_completions_generates_a_local_task(served):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from playground.generation import DecodingSettings, stream_generate

    loaded = served.ctx.models.current
    results = simple_evaluate(
        model="local-chat-completions",
        model_args={
            "model": served.model,
            "base_url": f"{served.base_url}/chat/completions",
            "num_concurrent": 1,
            "max_retries": 1,
            "tokenized_requests": False,
        },
        tasks=["playground_capitals_gen"],
        task_manager=TaskManager(include_path=str(ROOT / "examples" / "lm_eval")),
        apply_chat_template=True,
        log_samples=True,
        batch_size=1,
    )
    samples = results["samples"]["playground_capitals_gen"]
    assert len(samples) == 5
    correct = 0
    for sample in samples:
        doc = sample["doc"]
        question = f"{doc['question']} Answer with the city's name only."
        prompt = loaded.default_template.render_conversation([], question, None, loaded.tokenizer)
        *_, mine = stream_generate(loaded, prompt, DecodingSettings(do_sample=False, max_new_tokens=16))
        theirs = sample["resps"][0][0]
        assert theirs == mine.text.split("\n\n")[0]
        target = doc["choices"][doc["answer"]]
        correct += int(theirs.strip().strip(".").lower() == target.lower())
    assert results["results"]["playground_capitals_gen"]["exact_match,strict"] == pytest.approx(correct / 5)
