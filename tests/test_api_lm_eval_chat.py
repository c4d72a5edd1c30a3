"""lm-evaluation-harness's `local-chat-completions` scores a generate_until task (a local task
file, offline) through the playground's chat API, and its answers are the model's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api_server import serve

lm_eval = pytest.importorskip(
    "lm_eval", reason="lm-eval is not installed: make test installs it (requirements-dev.txt)"
)

ROOT = Path(__file__).resolve().parents[1]


def test_lm_eval_local_chat_completions_generates_a_local_task(monkeypatch, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from playground.generation import DecodingSettings, stream_generate
    from playground.models import EMBEDDED_KEY

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("PLAYGROUND_API_KEYS", "student-key:alice")
    monkeypatch.setenv("OPENAI_API_KEY", "student-key")
    monkeypatch.chdir(ROOT)  # the task's data_files path is relative to the repository root
    served = serve(EMBEDDED_KEY)
    try:
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
    finally:
        served.demo.close()
    assert results["results"]["playground_capitals_gen"]["exact_match,strict"] == pytest.approx(correct / 5)
