"""Many users at once: N simulated chat users on one model, serialised vs the batched engine.

Each user sends chat turns of about `--prompt-tokens` prompt tokens and exactly `--new-tokens`
new tokens (eos is held back, so every path does the same work), `--turns` times in a loop.
Paths, in one run:
- serial:       one request at a time under one lock, `generate()` (the app before the engine)
- graph1:       one request at a time through the static-cache CUDA-graph loop (GPU chat before
                the engine; CUDA only)
- engine:       the project's generation engine, every user's rows in one continuous batch (on
                CUDA its slot cache: one captured graph per step; else PaddedRows)
- engine-padded: the same engine on PaddedRows (padded DynamicCache, eager steps), to compare
- app:          the real app through gradio_client (/chat API), on the engine
- transformers: transformers' ContinuousBatchingManager (the peer baseline)
For each path and N: aggregate tokens/s, per-user tokens/s (new tokens over the user's wall
time, waiting included) and p50/p95 time to first token. The last line is
`serve_load: <ratio>x (...)`: the engine's aggregate at the largest N over one user alone.

CPU:  .venv/bin/python bench/serve_load.py --model smollm2-135m-instruct --users 1,4
GPU:  python bench/serve_load.py --shape llama --users 1,4,8,16,32   (7B-shaped, random weights)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATHS = ("serial", "graph1", "engine", "engine-padded", "app", "transformers")
SENTENCE = "Please explain, step by step and with one small example, how a hash table handles collisions. "


@dataclass
class Load:
    ttft: list[float] = field(default_factory=list)
    per_user: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    error: str = ""

    def line(self, path: str, users: int) -> str:
        if self.error:
            return f"{path:>12} N={users:<3} unavailable: {self.error}"
        q = statistics.quantiles(self.ttft, n=20) if len(self.ttft) > 1 else self.ttft * 19
        return (
            f"{path:>12} N={users:<3} aggregate {self.tokens / self.seconds:8.1f} tok/s · per user "
            f"{statistics.mean(self.per_user):6.1f} tok/s · TTFT p50 {statistics.median(self.ttft) * 1000:6.0f} ms"
            f" p95 {q[18] * 1000:6.0f} ms · {self.tokens} tokens in {self.seconds:.1f} s"
        )

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds and not self.error else 0.0


def _users(n: int, turns: int, one_turn) -> Load:
    """n threads, each running `turns` turns; one_turn(user) -> (ttft seconds, new tokens)."""
    load, lock = Load(), threading.Lock()

    def user(u: int) -> None:
        start, tokens = time.perf_counter(), 0
        for _ in range(turns):
            ttft, new = one_turn(u)
            tokens += new
            with lock:
                load.ttft.append(ttft)
        with lock:
            load.tokens += tokens
            load.per_user.append(tokens / (time.perf_counter() - start))

    began = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - began
    return load


def _prompt_ids(loaded: Any, n_tokens: int, user: int) -> list[int]:
    tok = loaded.tokenizer
    text = f"User {user}: " + SENTENCE * (1 + n_tokens // 12)
    ids = tok(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return ids


def serial_turns(loaded: Any, args: argparse.Namespace):
    import torch
    from transformers.generation.streamers import BaseStreamer

    from playground.generation.settings import GREEDY

    lock = threading.Lock()
    kwargs = GREEDY.with_(max_new_tokens=args.new_tokens).generate_kwargs()

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls, self.at = 0, None

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:  # the first call is the prompt
                self.at = time.perf_counter()

        def end(self) -> None:
            pass

    def turn(user: int) -> tuple[float, int]:
        ids = torch.tensor([_prompt_ids(loaded, args.prompt_tokens, user)], device=loaded.model.device)
        submitted = time.perf_counter()
        with lock, torch.inference_mode():
            streamer = FirstToken()
            out = loaded.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer, **kwargs
            )
        return streamer.at - submitted, int(out.shape[1] - ids.shape[1])

    return turn


def graph_turns(loaded: Any, args: argparse.Namespace):
    """The chat path before the engine on a GPU: one request at a time through the static-cache
    CUDA-graph loop (fast_decode.decode_tokens), the others waiting for the lock."""
    import torch

    from playground.generation.fast_decode import decode_tokens
    from playground.generation.settings import GREEDY

    lock = threading.Lock()
    settings = GREEDY.with_(max_new_tokens=args.new_tokens)

    def turn(user: int) -> tuple[float, int]:
        ids = torch.tensor([_prompt_ids(loaded, args.prompt_tokens, user)], device=loaded.model.device)
        submitted, first, new = time.perf_counter(), None, 0
        with lock, torch.inference_mode():
            for _ in decode_tokens(loaded.model, ids, settings, set()):
                first = first or time.perf_counter()
                new += 1
        return first - submitted, new

    return turn


def engine_turns(loaded: Any, args: argparse.Namespace, cache: str | None = None):
    from playground.generation.engine import Engine, Request
    from playground.generation.settings import GREEDY

    settings = GREEDY.with_(max_new_tokens=args.new_tokens)
    engine = Engine(loaded, cache=cache)
    print(f"{'engine' if cache is None else 'engine-' + cache:>12} cache: {_engine_cache(engine, loaded)}")

    def turn(user: int) -> tuple[float, int]:
        submitted = time.perf_counter()
        ticket = engine.submit(Request(_prompt_ids(loaded, args.prompt_tokens, user), settings))
        first = None
        for update in ticket.updates():
            if update is not None and first is None and update.new_tokens > 0:
                first = time.perf_counter()
            if update is not None and update.finished:
                if update.error is not None:
                    raise update.error
                return first - submitted, update.new_tokens
        raise AssertionError("no final update")

    return turn, engine


def _engine_cache(engine: Any, loaded: Any) -> str:
    from playground.generation.slot_rows import slot_reason

    reason = slot_reason(loaded.model, engine.cache_choice)
    if reason is not None:
        return f"PaddedRows ({reason})"
    return "slots, one CUDA graph per step" if loaded.model.device.type == "cuda" else "slots, eager steps"


def app_turns(loaded: Any, args: argparse.Namespace, url: str):
    from gradio_client import Client

    message = SENTENCE * max(1, args.prompt_tokens // 20)

    def turn(user: int) -> tuple[float, int]:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        submitted = time.perf_counter()
        job = client.submit(f"User {user}: {message}", "", args.new_tokens, 0.7, user, api_name="/chat")
        first = None
        while not job.done():
            if first is None and job.outputs():
                first = time.perf_counter()
            time.sleep(0.005)
        text = job.result()
        first = first or time.perf_counter()
        return first - submitted, len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    return turn


def transformers_turns(loaded: Any, args: argparse.Namespace):
    from transformers import ContinuousBatchingConfig, GenerationConfig

    config = GenerationConfig(max_new_tokens=args.new_tokens, do_sample=False)
    # CUDA graphs: the peer's fastest setting (the issue measured 392 tok/s at 16 users with it).
    batching = ContinuousBatchingConfig(use_cuda_graph=args.cuda)
    manager = loaded.model.init_continuous_batching(
        generation_config=config, continuous_batching_config=batching
    )
    manager.start()

    def turn(user: int) -> tuple[float, int]:
        submitted = time.perf_counter()
        rid = manager.add_request(
            _prompt_ids(loaded, args.prompt_tokens, user), max_new_tokens=args.new_tokens, streaming=True
        )
        first, new = None, 0
        for output in manager.request_id_iter(rid):
            if first is None and output.generated_tokens:
                first = time.perf_counter()
            new = len(output.generated_tokens)
            if output.error:
                raise RuntimeError(output.error)
        return (first or time.perf_counter()) - submitted, new

    return turn, manager


def profile_engine(engine: Any, cuda: bool) -> dict[str, float]:
    """Wall seconds spent in each part of the engine's steps, for a profile round.

    On CUDA the slot step is synchronised so that its GPU time is its own, not the sampler's
    (whose `.tolist()` would otherwise wait for it).
    """
    import torch

    from playground.generation import engine as engine_module

    spent: dict[str, float] = {}

    def timed(name: str, fn: Any, sync: bool = False) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                out = fn(*a, **k)
                if sync and cuda:
                    torch.cuda.synchronize()
                return out
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began

        return wrapper

    engine._admit = timed("admit (prefills)", engine._admit)
    engine._took = timed("took (detokenise, stops, stream)", engine._took)
    engine._step = timed("step (all)", engine._step)
    engine_module.process_logits = timed("sampler: process_logits", engine_module.process_logits)
    engine_module.draw_next_token = timed(
        "sampler: draw_next_token (waits for GPU)", engine_module.draw_next_token
    )
    real_slot_batch = engine._slot_batch

    def slot_batch(model: Any) -> Any:
        slots = real_slot_batch(model)
        if slots is not None and not getattr(slots, "_profiled", False):
            slots.step = timed("slot forward (graph replay)", slots.step, sync=True)
            slots._profiled = True
        return slots

    engine._slot_batch = slot_batch
    return spent


def launch_app(loaded_name: str, options: Any) -> tuple[str, Any]:
    import socket

    from playground.context import AppContext
    from playground.ui.app import build_app, launch_kwargs

    ctx = AppContext()
    ctx.models.load(loaded_name, options)
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=4, max_size=256)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs()
    )
    return f"http://127.0.0.1:{port}/", ctx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="a preset, folder or hub id")
    parser.add_argument("--shape", help="instead of --model: a random-weight model of bench/_gpu_models.py")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--users", default="1,4", help="comma-separated N (1,4,8,16,32)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"any of {','.join(PATHS)}")
    parser.add_argument("--turns", type=int, default=2, help="chat turns per user")
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--root", default="/tmp/gpu-models", help="where --shape models are saved")
    parser.add_argument("--profile", action="store_true", help="then one more engine round, timed per part")
    args = parser.parse_args()

    import torch

    from playground.models import LoadOptions

    args.cuda = torch.cuda.is_available()
    where = torch.cuda.get_device_name() if args.cuda else f"CPU, {torch.get_num_threads()} threads"
    name = args.model
    if args.shape:
        from bench._gpu_models import ensure_saved

        name = str(ensure_saved(args.shape, Path(args.root)))
    options = LoadOptions(precision=args.precision)
    paths = [p for p in args.paths.split(",") if p]
    if "app" in paths:
        url, ctx = launch_app(name, options)
        loaded = ctx.models.current
    else:  # no web server needed (and the GPU machine has no gradio)
        from playground.models import load_model

        url, loaded = "", load_model(name, options)
    # Every answer has exactly --new-tokens tokens on every path: eos is held back.
    loaded.model.generation_config.min_new_tokens = args.new_tokens
    label = f"{loaded.name} on {where}, {args.prompt_tokens}-token prompts, {args.new_tokens} new tokens"
    print(f"serve_load: {label}, {args.turns} turns per user", flush=True)
    makers = {
        "serial": lambda: serial_turns(loaded, args),
        "graph1": lambda: graph_turns(loaded, args),
        "app": lambda: app_turns(loaded, args, url),
    }
    results: dict[tuple[str, int], Load] = {}
    users = [int(n) for n in args.users.split(",")]
    for path in paths:
        manager = engine = None
        try:
            if path == "transformers":
                turn, manager = transformers_turns(loaded, args)
            elif path in ("engine", "engine-padded"):
                turn, engine = engine_turns(loaded, args, None if path == "engine" else "padded")
            else:
                turn = makers[path]()
            turn(0)  # warm-up
            if engine is not None or manager is not None:
                # Batched paths capture a CUDA graph per batch size: warm them at every size timed.
                for n in users:
                    _users(n, 1, turn)
            for n in users:
                results[path, n] = load = _users(n, args.turns, turn)
                print(load.line(path, n), flush=True)
            if args.profile and engine is not None:
                steps_before, spent = engine.steps, profile_engine(engine, args.cuda)
                _users(max(users), args.turns, turn)
                steps = max(1, engine.steps - steps_before)
                for part, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
                    print(
                        f"{path:>12} profile N={max(users)}: {part:<36} {seconds * 1000 / steps:7.2f} ms/step"
                    )
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run here is reported, not fatal
            results[path, users[0]] = load = Load(error=f"{type(exc).__name__}: {str(exc)[:200]}")
            print(load.line(path, users[0]), flush=True)
        finally:
            if manager is not None:
                manager.stop(block=True)
            if engine is not None:
                slots = engine._slots
                if slots is not None:
                    length = slots.cache.max_len if slots.cache is not None else 0
                    print(
                        f"{path:>12} slot step captured {slots.captures}x, cache {slots.slots} x {length} columns"
                    )
                engine.close("benchmark path done")
    top = max(users)
    # One user alone on the fastest one-at-a-time path measured: the headline's baseline.
    singles = [(p, results[p, 1]) for p in ("graph1", "serial") if (p, 1) in results and results[p, 1].rate]
    base, alone = max(singles, key=lambda pl: pl[1].rate, default=("engine", results.get(("engine", 1))))
    batched = results.get(("engine", top))
    if alone and batched and alone.rate:
        print(
            f"serve_load: {batched.rate / alone.rate:.2f}x (engine aggregate tok/s at {top} users vs one user "
            f"alone on the {base} path; {label})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
