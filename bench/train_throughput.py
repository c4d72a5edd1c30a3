"""Training throughput: the playground trainer vs plain peft + transformers Trainer.

Both sides train the same LoRA (same model, data, tokenization, micro-batch, gradient
accumulation, steps) with padding to the longest example of each micro-batch, as the homework
did with Trainer. Each side runs in its own subprocess so its peak memory is its own (CPU: peak
RSS; CUDA: torch.cuda.max_memory_allocated). Tokens/s counts non-padding tokens between the end
of the first optimizer step and the end of the last, so one-time start-up costs are left out.

    python bench/train_throughput.py                      # embedded model, Tang data if ../shared exists
    python bench/train_throughput.py --model PATH --steps 20

The last line is: train_throughput: <ratio>x (service vs peft+Trainer tokens/s, <model>, <device>)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TANG = REPO.parent / "shared" / "datasets" / "tang-poems" / "Tang_training_data.json"


def demo_data(folder: Path) -> Path:
    """A small instruction file for when the course data is not there."""
    rows = [
        {
            "instruction": "Continue the counting rhyme.",
            "input": f"{i} little ducks went out one day,",
            "output": f"over the hills and far away; mother duck said quack quack quack, and {i - 1} came back.",
        }
        for i in range(2, 130)
    ]
    path = folder / "demo_train.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def rate(times: list[float], tokens: list[int]) -> float:
    """Tokens/s over steps 2..N (the first step pays for warm-up)."""
    if len(times) < 2:
        return tokens[0] / times[0] if times else 0.0
    return sum(tokens[1:]) / (times[-1] - times[0])


def service_side(args: argparse.Namespace, data: Path, work: Path) -> dict:
    from playground.training import Trainer, TrainingConfig

    config = TrainingConfig(
        model=args.model, data=str(data), first_n=args.first_n, template=args.template,
        max_steps=args.steps, micro_batch=args.micro_batch, grad_accum=args.grad_accum,
        max_length=args.max_length, r=args.r, alpha=args.alpha, dropout=0.05,
        target_modules=args.target_modules, lr=2e-4, save_every=0, output=str(work / "adapter"),
    )  # fmt: skip
    start = time.perf_counter()
    times: list[float] = []
    tokens: list[int] = []
    losses: list[float] = []
    device = "cpu"

    def on_event(event: dict) -> None:
        nonlocal device
        if event["type"] == "start":
            device = event["device"]
        if event["type"] == "step":
            times.append(time.perf_counter())
            tokens.append(event["tokens"])
            losses.append(event["loss"])

    Trainer(config, work / "job", on_event=on_event).run()
    return {
        "tokens_per_s": rate(times, tokens),
        "step_s": (times[-1] - times[0]) / max(len(times) - 1, 1),
        "peak_mb": peak_memory_mb(device),
        "final_loss": losses[-1],
        "total_s": time.perf_counter() - start,
        "device": device,
    }


def trainer_side(args: argparse.Namespace, data: Path, work: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from playground.models import LoadOptions, load_model
    from playground.prompts.templates import get_template
    from playground.training.dataset import load_file
    from playground.training.formatting import format_example
    from playground.training.modeling import resolve_target_modules

    start = time.perf_counter()
    cuda = torch.cuda.is_available()
    loaded = load_model(args.model, LoadOptions(precision="4bit" if cuda else "fp32"))
    model = loaded.model
    if loaded.quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=args.r, lora_alpha=args.alpha, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
            target_modules=resolve_target_modules(args.target_modules),
        ),
    )  # fmt: skip
    tokenizer = loaded.tokenizer
    template = get_template(args.template) if args.template else loaded.default_template
    examples = load_file(data).examples[: args.first_n or None]
    # Same tokens as the service: [bos] + prompt + output + [eos], prompt labels -100.
    features = []
    for e in examples:
        f = format_example(e, tokenizer, template, "masked_prompt", args.max_length)
        features.append(
            {"input_ids": f.input_ids, "labels": f.labels, "attention_mask": [1] * len(f.input_ids)}
        )
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    batch_tokens: list[int] = []

    def collate(rows: list[dict]) -> dict:
        batch = pad(rows)
        batch_tokens.append(int(batch["attention_mask"].sum()))
        return batch

    times: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF callback signature
            times.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    training_args = TrainingArguments(
        output_dir=str(work / "hf"), per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=args.grad_accum, max_steps=args.steps, learning_rate=2e-4,
        lr_scheduler_type="linear", logging_steps=1, save_strategy="no", report_to="none", seed=42,
        max_grad_norm=1.0, optim="adamw_torch", use_cpu=not cuda, bf16=cuda, gradient_checkpointing=cuda,
        dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=training_args, train_dataset=features, data_collator=collate, callbacks=[Clock()]
    )
    trainer.train()
    ga = args.grad_accum
    tokens = [sum(batch_tokens[i * ga : (i + 1) * ga]) for i in range(len(times))]
    return {
        "tokens_per_s": rate(times, tokens),
        "step_s": (times[-1] - times[0]) / max(len(times) - 1, 1),
        "peak_mb": peak_memory_mb("cuda" if cuda else "cpu"),
        "final_loss": losses[-1] if losses else float("nan"),
        "total_s": time.perf_counter() - start,
        "device": "cuda" if cuda else "cpu",
    }


def run_side(side: str, argv: list[str]) -> dict:
    """One side in a fresh process, so peak memory and warm caches are its own."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--data", help="training file (default: Tang data if ../shared exists, else a demo file)"
    )
    parser.add_argument("--template", default="alpaca")
    parser.add_argument("--first-n", type=int, default=400)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16)
    parser.add_argument("--target-modules", default="q,v")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating; the best counts")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--side", choices=["service", "trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--data-path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("PLAYGROUND_DATA_DIR", str(work / "data"))
        os.environ.setdefault("PLAYGROUND_ADAPTERS_DIR", str(work / "adapters"))
        if args.side:
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            side = service_side if args.side == "service" else trainer_side
            print(json.dumps(side(args, Path(args.data_path), work)), flush=True)
            return
        data = Path(args.data) if args.data else (TANG if TANG.is_file() else demo_data(work))
        argv = ["--data-path", str(data)]
        for name in ("model", "template", "first_n", "steps", "micro_batch", "grad_accum", "max_length", "r"):
            argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
        argv += [
            "--alpha",
            str(args.alpha),
            "--target-modules",
            args.target_modules,
            "--threads",
            str(args.threads),
        ]
        print(
            f"model {args.model}, data {data.name} (first {args.first_n}), {args.steps} steps of "
            f"{args.micro_batch}x{args.grad_accum} examples, max_length {args.max_length}, "
            f"LoRA r={args.r} alpha={args.alpha} on {args.target_modules}, "
            f"{args.threads or 'default'} thread(s), best of {args.repeats}"
        )
        results: dict[str, list[dict]] = {"service": [], "trainer": []}
        for _ in range(args.repeats):
            for side in ("service", "trainer"):
                result = run_side(side, argv)
                results[side].append(result)
                print(
                    f"  {side:8s} {result['tokens_per_s']:9.1f} tokens/s  {result['step_s']:7.2f} s/step  "
                    f"peak {result['peak_mb']:8.0f} MiB  final loss {result['final_loss']:.4f}  "
                    f"({result['total_s']:.0f} s in all)",
                    flush=True,
                )
        best = {side: max(r["tokens_per_s"] for r in runs) for side, runs in results.items()}
        device = results["service"][0]["device"]
        ratio = best["service"] / best["trainer"]
    print(f"train_throughput: {ratio:.2f}x (service vs peft+Trainer tokens/s, {args.model}, {device})")


if __name__ == "__main__":
    main()
