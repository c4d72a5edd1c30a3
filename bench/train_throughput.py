"""Training throughput: the playground trainer vs plain peft + transformers Trainer.

Both sides train the same LoRA (same model, data, tokenization, examples per step, steps). The
headline baseline is the strongest plain peft + Trainer a competent user would configure
(`--trainer-variants best`: no gradient checkpointing, padding-free DataCollatorWithFlattening,
one pass per step); the homework's own setup (`homework`: padded micro-batches, gradient
accumulation, checkpointing) is printed beside it, labelled. Each side runs in its own subprocess so its peak memory is its own (CPU: peak
RSS; CUDA: torch.cuda.max_memory_allocated). Tokens/s counts non-padding tokens between the end
of the first optimizer step and the end of the last, so one-time start-up costs are left out.

    python bench/train_throughput.py                      # embedded model, Tang data if ../shared exists
    python bench/train_throughput.py --model PATH --steps 20
    python bench/train_throughput.py --shape llama --r 64 --steps 20    # GPU: 7B-shaped QLoRA

On CUDA the service side can run several variants (`--variants packed,padded`): `packed` is the
service as shipped, `padded` pads micro-batches as Trainer does, `compile` sets torch_compile,
`autograd` turns fused_layers off, `recompute` keeps no activations (activation_memory_gb=0: every
fused layer recomputes, the least memory), `upcast` adds peft's fp32 upcast of
norms, embeddings and LM head (PLAYGROUND_QLORA_UPCAST=1). Both sides see the same examples in the
same order, so their loss curves compare step by step. MFU counts 4N FLOPs per non-padding token
(N: the decoder layers' linear weights) against 790 TFLOP/s (dense bf16 measured on an H100/H200).

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
TANG_SAMPLE = REPO / ".gpu" / "tang256.json"  # what travels to the GPU machine


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


def long_data(folder: Path, chars: int = 600) -> Path:
    """Rows longer than any max_length the bench uses, to measure memory at full length (4 x 512)."""
    import random

    rng = random.Random(0)
    common = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    rows = [
        {"instruction": "續寫這首詩。", "input": "", "output": "".join(rng.choices(common, k=chars))}
        for _ in range(64)
    ]
    path = folder / "long_train.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
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


PEAK_FLOPS = 790e12  # dense bf16 matrix products, measured on the H100/H200 machines


def decoder_linear_params(model_path: str) -> int:
    """N for MFU: the weights of the decoder layers' linear maps (embeddings and LM head left out)."""
    from transformers import AutoConfig

    from playground.models.loader import resolve

    c = AutoConfig.from_pretrained(resolve(model_path).source)
    head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    q, kv = c.num_attention_heads * head, c.num_key_value_heads * head
    attention = c.hidden_size * (q + 2 * kv) + q * c.hidden_size
    return c.num_hidden_layers * (attention + 3 * c.hidden_size * c.intermediate_size)


def training_config(args: argparse.Namespace, data: Path, work: Path, **changes: object) -> object:
    from playground.training import TrainingConfig

    return TrainingConfig(
        model=args.model, data=str(data), first_n=args.first_n, template=args.template,
        max_steps=args.steps, micro_batch=args.micro_batch, grad_accum=args.grad_accum,
        max_length=args.max_length, r=args.r, alpha=args.alpha, dropout=0.05,
        target_modules=args.target_modules, lr=2e-4, save_every=0, output=str(work / "adapter"), **changes,
    )  # fmt: skip


class StepProfiler:
    """torch.profiler over steps 3 and 4, printed as a kernel table (only with --profile)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.prof = enabled, None

    def on_step(self, step: int) -> None:
        if not self.enabled:
            return
        import torch

        if step == 2:
            self.prof = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            )
            self.prof.start()
        elif step == 4 and self.prof is not None:
            torch.cuda.synchronize()
            self.prof.stop()
            table = self.prof.key_averages().table(
                sort_by="cuda_time_total", row_limit=30, max_name_column_width=60
            )
            print("profile of steps 3-4:\n" + table, file=sys.stderr, flush=True)
            self.prof = None


def service_side(args: argparse.Namespace, data: Path, work: Path) -> dict:
    from playground.training import Trainer

    variant = args.variant or "packed"
    if "upcast" in variant:
        os.environ["PLAYGROUND_QLORA_UPCAST"] = "1"
    config = training_config(
        args,
        data,
        work,
        packing="padded" not in variant,
        torch_compile="compile" in variant,
        fused_layers=False if "autograd" in variant else None,
        activation_memory_gb=0.0 if "recompute" in variant else None,
    )
    profiler = StepProfiler("profile" in variant)
    start = time.perf_counter()
    times: list[float] = []
    tokens: list[int] = []
    losses: list[float] = []
    device, method = "cpu", ""

    def on_event(event: dict) -> None:
        nonlocal device, method
        if event["type"] == "start":
            device, method = event["device"], event["method"]
            method += ", fused layers" if event.get("fused_layers") else ""
            if event.get("kept_layers"):
                method += (
                    f" ({event['kept_layers']} keep activations, {event.get('kept_weights', 0)} weights)"
                )
            if device == "cuda":  # peak memory of training, not of loading (which can pass through bf16)
                import torch

                torch.cuda.reset_peak_memory_stats()
        if event["type"] == "step":
            if device == "cuda":
                import torch

                torch.cuda.synchronize()
            times.append(time.perf_counter())
            tokens.append(event["tokens"])
            losses.append(event["loss"])
            profiler.on_step(event["step"])

    Trainer(config, work / "job", on_event=on_event).run()
    return {
        "tokens_per_s": rate(times, tokens),
        "step_s": (times[-1] - times[0]) / max(len(times) - 1, 1),
        "peak_mb": peak_memory_mb(device),
        "final_loss": losses[-1],
        "losses": losses,
        "total_s": time.perf_counter() - start,
        "device": device,
        "method": method,
    }


def trainer_side(args: argparse.Namespace, data: Path, work: Path) -> dict:
    """peft + Trainer. Variant "best" (default): what a competent user runs when memory allows:
    no gradient checkpointing, padding-free `DataCollatorWithFlattening` (sdpa then masks each
    example to itself through position_ids), and all of a step's examples in one pass. Variant
    "homework": the course's setup: padded micro-batches with gradient accumulation and
    checkpointing on."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from playground.models import LoadOptions, load_model
    from playground.prompts.templates import resolve_template
    from playground.training.dataset import load_file
    from playground.training.formatting import format_example
    from playground.training.modeling import resolve_target_modules
    from playground.training.plan import DataOrder, Plan
    from playground.training.trainer import _seed_everything

    homework = args.variant == "homework"
    # peft's QLoRA recipe upcasts norms, embeddings and the LM head to fp32; "best" keeps bf16 as
    # the service does (faster), "best-upcast" and "homework" follow the recipe.
    upcast = homework or "upcast" in args.variant
    start = time.perf_counter()
    cuda = torch.cuda.is_available()
    checkpointing = cuda and homework
    _seed_everything(42)  # as the service does before loading, so both draw the same LoRA init
    loaded = load_model(args.model, LoadOptions(precision="4bit" if cuda else "fp32"))
    model = loaded.model
    if loaded.quantization and upcast:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=args.r, lora_alpha=args.alpha, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
            target_modules=resolve_target_modules(args.target_modules),
        ),
    )  # fmt: skip
    tokenizer = loaded.tokenizer
    template = resolve_template(args.template, "", loaded.default_template)
    examples = load_file(data).examples[: args.first_n or None]
    # Same tokens as the service: [bos] + prompt + output + [eos], prompt labels -100.
    features = []
    for e in examples:
        f = format_example(e, tokenizer, template, "masked_prompt", args.max_length)
        features.append(
            {"input_ids": f.input_ids, "labels": f.labels, "attention_mask": [1] * len(f.input_ids)}
        )
    # The service's example order, fed sequentially: both sides train on the same micro-batches.
    plan = Plan.build(len(features), training_config(args, data, work))
    order = DataOrder(plan)
    features = [features[i] for m in range(plan.total_micro) for i in order.examples(m)]
    if homework:
        pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
        micro, accum = args.micro_batch, args.grad_accum
    else:
        flatten = DataCollatorWithFlattening()
        pad = lambda rows: flatten([{k: r[k] for k in ("input_ids", "labels")} for r in rows])  # noqa: E731
        micro, accum = args.micro_batch * args.grad_accum, 1
    batch_tokens: list[int] = []

    def collate(rows: list[dict]) -> dict:
        batch = pad(rows)
        mask = batch.get("attention_mask")
        batch_tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch

    times: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF callback signature
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    training_args = TrainingArguments(
        output_dir=str(work / "hf"), per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum, max_steps=args.steps, learning_rate=2e-4,
        lr_scheduler_type="linear", logging_steps=1, save_strategy="no", report_to="none", seed=42,
        max_grad_norm=1.0, optim="adamw_torch", use_cpu=not cuda, bf16=cuda,
        gradient_checkpointing=checkpointing,
        dataloader_num_workers=0, disable_tqdm=True, train_sampling_strategy="sequential",
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=training_args, train_dataset=features, data_collator=collate, callbacks=[Clock()]
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    tokens = [sum(batch_tokens[i * accum : (i + 1) * accum]) for i in range(len(times))]
    return {
        "tokens_per_s": rate(times, tokens),
        "step_s": (times[-1] - times[0]) / max(len(times) - 1, 1),
        "peak_mb": peak_memory_mb("cuda" if cuda else "cpu"),
        "final_loss": losses[-1] if losses else float("nan"),
        "losses": losses,
        "total_s": time.perf_counter() - start,
        "device": "cuda" if cuda else "cpu",
        "method": ("qlora" if loaded.quantization else "lora")
        + (
            f", padded {micro}x{accum}, checkpointing {'on' if checkpointing else 'off'}"
            if homework
            else f", padding-free {micro} per pass, checkpointing off" + (", fp32 upcast" if upcast else "")
        ),
    }


def run_side(side: str, argv: list[str]) -> dict:
    """One side in a fresh process, so peak memory and warm caches are its own."""
    # Keep what PYTHONPATH already holds (on the GPU machine, the carried bitsandbytes).
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    )
    variant = side.split(":", 1)[1] if ":" in side else ""
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side.split(":")[0], "--variant", variant, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
    if "profile of steps" in proc.stderr:
        print(proc.stderr[proc.stderr.index("profile of steps") :], flush=True)
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--shape", choices=["llama", "mistral", "tiny"], help="a 7B-shaped random model (GPU)"
    )
    parser.add_argument(
        "--data", help="training file (default: Tang data if ../shared or .gpu/ has it, else a demo file)"
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
    parser.add_argument("--long-rows", action="store_true", help="every example fills max_length (memory)")
    parser.add_argument("--variants", default="packed", help="service variants: packed, padded, upcast, ...")
    parser.add_argument(
        "--trainer-variants",
        default="best,homework",
        help="peft+Trainer variants: best, best-upcast (peft's fp32 upcast), homework; the fastest is the headline",
    )
    parser.add_argument("--profile", action="store_true", help="print a kernel table of the first variant")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating; the best counts")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--side", choices=["service", "trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
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
        if args.shape:
            from bench._gpu_models import ensure_saved

            args.model = str(ensure_saved(args.shape, Path(tempfile.gettempdir()) / "gpu-models"))
        data = (
            long_data(work)
            if args.long_rows
            else (
                Path(args.data)
                if args.data
                else next((p for p in (TANG, TANG_SAMPLE) if p.is_file()), None) or demo_data(work)
            )
        )
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
        variants = [v for v in args.variants.split(",") if v]
        print(
            f"model {args.model}, data {data.name} (first {args.first_n}), {args.steps} steps of "
            f"{args.micro_batch}x{args.grad_accum} examples, max_length {args.max_length}, "
            f"LoRA r={args.r} alpha={args.alpha} on {args.target_modules}, "
            f"{args.threads or 'default'} thread(s), best of {args.repeats}, service variants {variants}"
        )
        n_params = decoder_linear_params(args.model)
        trainers = [f"trainer:{v}" for v in args.trainer_variants.split(",") if v]
        sides = [f"service:{v}" for v in variants] + trainers
        if args.profile:  # a run of its own: the profiler slows the steps it records
            sides.append(f"{sides[0]}-profile")
        results: dict[str, list[dict]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:
                if side.endswith("-profile") and repeat:
                    continue
                try:
                    result = run_side(side, argv)
                except SystemExit as exc:
                    if side in (sides[0], trainers[0]):
                        raise
                    print(
                        f"  {side}: {exc}", flush=True
                    )  # an experiment failing leaves the comparison standing
                    continue
                results[side].append(result)
                mfu = result["tokens_per_s"] * 4 * n_params / PEAK_FLOPS
                print(
                    f"  {side:16s} {result['tokens_per_s']:9.1f} tokens/s  {result['step_s']:7.2f} s/step  "
                    f"peak {result['peak_mb']:8.0f} MiB  final loss {result['final_loss']:.4f}  "
                    + (f"MFU {mfu:.1%}  " if result["device"] == "cuda" else "")
                    + f"{result['method']} ({result['total_s']:.0f} s in all)",
                    flush=True,
                )
        best = {side: max(runs, key=lambda r: r["tokens_per_s"]) for side, runs in results.items() if runs}
        # The headline baseline is the fastest Trainer configuration measured here (the padding-free
        # one on a GPU; on a CPU the padded one can be faster).
        strongest = max((t for t in trainers if t in best), key=lambda t: best[t]["tokens_per_s"])
        shipped, trainer = best[sides[0]], best[strongest]
        n = min(20, len(shipped["losses"]), len(trainer["losses"]))
        print(f"  loss per step, {sides[0]:16s}: " + " ".join(f"{x:.4f}" for x in shipped["losses"][:n]))
        for side in trainers:
            if side in best:
                losses = best[side]["losses"][:n]
                gaps = [abs(a - b) / abs(b) for a, b in zip(shipped["losses"][:n], losses)]
                print(f"  loss per step, {side:16s}: " + " ".join(f"{x:.4f}" for x in losses))
                print(
                    f"  loss curves, service vs {side}, first {n} steps: largest relative difference "
                    f"{max(gaps, default=0):.2e}"
                )
        for side in trainers:
            if side in best and side != strongest:
                print(
                    f"  (weaker baseline) service vs {side}: "
                    f"{shipped['tokens_per_s'] / best[side]['tokens_per_s']:.2f}x"
                )
        device = shipped["device"]
        ratio = shipped["tokens_per_s"] / trainer["tokens_per_s"]
        mfu = shipped["tokens_per_s"] * 4 * n_params / PEAK_FLOPS
    extra = f", MFU {mfu:.1%}, peak {shipped['peak_mb'] / 1024:.1f} GiB" if device == "cuda" else ""
    print(
        f"train_throughput: {ratio:.2f}x (service vs peft+Trainer {strongest.split(':')[1]} tokens/s, "
        f"{Path(args.model).name}, "
        f"{sides[0]}, {device}{extra})"
    )


if __name__ == "__main__":
    main()
