"""Fast decoding on CUDA: a static KV cache and the one-token step replayed as a CUDA graph.

At batch 1 a 7B model spends most of each `generate()` step launching kernels from Python
(hundreds per token), not reading weights. Here the prompt is prefilled eagerly into a
static cache, the one-token forward is captured once as a CUDA graph, and every later token
is one graph replay plus the sampler's kernels (sampler.py, the same sampler the engine uses).
Inside the graph, RMSNorm and rotary embedding run as torch.compile'd fused kernels, and each
next step is queued before the current token reaches the host. Measured on an H100 (7B
shapes): bench/RESULTS.md, section GPU.

`_Runner` is the captured step; `decode_tokens` (one row) and `decode_rows` (several
continuations of one prompt) drive it for the GPU benches. The app's generations run in the
engine's continuous batch (engine.py), which does not use these runners yet: its rows have
different lengths, which a static cache shared by all rows does not hold.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from playground.generation.engine import eos_ids  # noqa: F401 - callers import it from here too
from playground.generation.sampler import RowSampling, sample_next_token
from playground.generation.settings import (
    UNSAMPLED_GENERATION_OPTIONS,
    DecodingSettings,
    generation_config_option,
)
from playground.models.unwrap import base_model, takes_logits_to_keep

log = logging.getLogger(__name__)

# "0" turns the fast path off (then stream.py always uses generate()).
ENV_SWITCH = "PLAYGROUND_FAST_DECODE"
# "0" keeps the captured step unfused (HF's own kernels only).
FUSE_SWITCH = "PLAYGROUND_FAST_DECODE_FUSE"

# This one-row loop also leaves a model's own min_new_tokens, typical-p and min-p to generate().
_UNSUPPORTED_GENERATION_OPTIONS = (*UNSAMPLED_GENERATION_OPTIONS, "min_new_tokens", "typical_p", "min_p")


@dataclass(frozen=True)
class FastDecodeConfig:
    """`cuda_graph=False` runs the same loop with eager steps (CPU, debugging)."""

    cuda_graph: bool = True
    # Inside the graph, RMSNorm and rotary embedding run as torch.compile'd fused kernels: at
    # batch 1 a 7B step is ~1500 tiny kernels and their gaps cost as much as reading the weights.
    fuse: bool = field(default_factory=lambda: os.environ.get(FUSE_SWITCH, "1") != "0")
    # The cache length is rounded up to a multiple of this so that one captured graph serves
    # many chat turns; every step attends over the whole cache, so the bucket stays small.
    cache_bucket: int = 256


# Most rows `decode_rows` takes: each row has its own KV cache (0.5 MiB per token at 7B).
MAX_ROWS = 16
# Fewest rows it decodes (see row_bucket).
MIN_ROWS = 4


class Busy(Exception):
    """Another request is decoding with this model's graph right now."""


def unsupported_reason(
    model: Any, settings: DecodingSettings, input_ids: torch.Tensor, require_cuda: bool = True
) -> str | None:
    """Why the fast loop cannot serve this request, or None when it can."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"turned off by {ENV_SWITCH}=0"
    if settings.num_beams > 1:
        return "beam search"
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        return "batch size is not 1"
    needed = int(input_ids.shape[1]) + int(settings.max_new_tokens)
    return _model_reason(model, input_ids.device, needed, require_cuda, _UNSUPPORTED_GENERATION_OPTIONS)


def rows_unsupported_reason(
    model: Any, input_ids: torch.Tensor, rows: int, max_new_tokens: int, require_cuda: bool = True
) -> str | None:
    """Why `decode_rows` cannot continue this prompt `rows` times, or None when it can."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"turned off by {ENV_SWITCH}=0"
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        return "the rows do not share one prompt"
    if not 1 <= rows <= MAX_ROWS:
        return f"{rows} rows (the batched loop takes 1 to {MAX_ROWS})"
    needed = int(input_ids.shape[1]) + int(max_new_tokens)
    # decode_rows holds eos back for min_new_tokens itself, as generate() does.
    options = tuple(o for o in _UNSUPPORTED_GENERATION_OPTIONS if o != "min_new_tokens")
    return _model_reason(model, input_ids.device, needed, require_cuda, options)


def _model_reason(
    model: Any, device: torch.device, needed: int, require_cuda: bool, options: tuple[str, ...]
) -> str | None:
    base = base_model(model)
    config = base.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder model"
    if model.training:
        return "model is in training mode"
    if not getattr(base, "_can_compile_fullgraph", False):
        return f"{type(base).__name__} does not declare static-shape (graph-safe) support"
    devices = {str(d) for d in (getattr(base, "hf_device_map", None) or {}).values()}
    if len(devices) > 1:
        return "model is spread over several devices"
    if require_cuda and device.type != "cuda":
        return "not on a CUDA device"
    layer_types = _layer_types(config)
    if any(t not in ("full_attention", "sliding_attention") for t in layer_types):
        return "model has attention layers other than full or sliding attention"
    window = getattr(config, "sliding_window", None)
    if "sliding_attention" in layer_types and window is not None and needed > int(window):
        # Within the window sliding attention equals full attention; beyond it the cache rolls.
        return f"prompt plus new tokens ({needed}) exceed the sliding window ({window})"
    key = generation_config_option(model, options)
    return f"generation_config sets {key}" if key else None


def _layer_types(config: Any) -> list[str]:
    from transformers.cache_utils import get_layer_types_and_kwargs

    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    return list(get_layer_types_and_kwargs(text)[0])


class _Runner:
    """A static cache for one model, cache length and row count, plus the captured one-token step."""

    def __init__(self, model: Any, max_len: int, use_graph: bool, fuse: bool, rows: int = 1) -> None:
        from transformers.cache_utils import Cache, StaticLayer

        self.model = model
        self.max_len = max_len
        self.rows = rows
        self.use_graph = use_graph
        self.fuse = fuse
        self.fused = False
        self.lock = threading.Lock()
        n_layers = len(_layer_types(base_model(model).config))
        # Plain static layers for sliding-window models too: unsupported_reason keeps the cache
        # within the window, where the two are the same and the plain one is graph-safe.
        self.cache = Cache(layers=[StaticLayer(max_cache_len=max_len) for _ in range(n_layers)])
        self.graph: Any = None
        self.static_ids: torch.Tensor | None = None
        self.static_logits: torch.Tensor | None = None
        self.signature = _signature(model)

    def prefill(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.cache.reset()
        kwargs = {"logits_to_keep": 1} if takes_logits_to_keep(self.model) else {}
        out = self.model(input_ids=input_ids, past_key_values=self.cache, use_cache=True, **kwargs)
        return out.logits[:, -1, :]

    def ensure_graph(self) -> None:
        """Capture the one-token step once; the cache must hold a prefilled prompt."""
        if not self.use_graph or self.graph is not None:
            return
        device = self.cache.layers[0].keys.device
        self.static_ids = torch.zeros((self.rows, 1), dtype=torch.long, device=device)
        lengths = [layer.cumulative_length.clone() for layer in self.cache.layers]
        if self.fuse:
            try:
                self._capture(device, lengths, fused=True)
                return
            except Exception as exc:  # noqa: BLE001 - no compiler (Triton) etc.: capture unfused
                log.warning(
                    "fused decode step unavailable (%s: %s); capturing it unfused", type(exc).__name__, exc
                )
                self._restore(lengths)
        self._capture(device, lengths, fused=False)

    def _capture(self, device: torch.device, lengths: list[torch.Tensor], fused: bool) -> None:
        # Warm-up runs (compilation, lazy initialisations, cuBLAS workspaces) belong outside the
        # capture; they advance the cache, so the lengths are put back afterwards.
        with _fused_ops(self.model) if fused else nullcontext():
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._eager_step(self.static_ids)
            torch.cuda.current_stream(device).wait_stream(side)
            self._restore(lengths)
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA work of other threads (another model, the UI) does not void it.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.static_logits = self._eager_step(self.static_ids)
        self._restore(lengths)
        self.graph, self.fused = graph, fused

    def step(self, token: torch.Tensor) -> torch.Tensor:
        if self.graph is None:
            return self._eager_step(token.view(self.rows, 1))
        self.static_ids.copy_(token.view(self.rows, 1))
        self.graph.replay()
        return self.static_logits

    def _eager_step(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, past_key_values=self.cache, use_cache=True).logits[:, -1, :]

    def _restore(self, lengths: list[torch.Tensor]) -> None:
        for layer, length in zip(self.cache.layers, lengths):
            layer.cumulative_length.copy_(length)


# Model families whose RMSNorm and rotary embedding are exactly Llama's (checked by name, so a
# variant with another formula, e.g. Gemma's 1 + weight, is never replaced).
_FUSABLE_NORMS = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm")
_FUSABLE_MODULES = ("llama", "mistral", "qwen2")
_COMPILED: dict[str, Any] = {}


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = hidden.dtype
    h = hidden.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def _rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)

    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def _compiled(name: str, fn: Callable) -> Callable:
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=False, fullgraph=True)
    return _COMPILED[name]


@contextmanager
def _fused_ops(model: Any) -> Iterator[None]:
    """Within: the model's RMSNorms and rotary embedding run compiled (same formulas, fused).

    Only for the capture: eager forward passes (prefill, generate(), training) are untouched.
    """
    import sys

    import torch._inductor.config as inductor_config

    norm, rotary = _compiled("rms_norm", _rms_norm), _compiled("rotary", _rotary)
    norms = [
        m for m in model.modules() if type(m).__name__ in _FUSABLE_NORMS and hasattr(m, "variance_epsilon")
    ]
    module = sys.modules.get(type(base_model(model)).__module__)
    family = module.__name__.split(".")[-2] if module is not None and "." in module.__name__ else ""
    patch_rotary = family in _FUSABLE_MODULES and hasattr(module, "apply_rotary_pos_emb")
    if not norms and not patch_rotary:
        raise RuntimeError("no RMSNorm or rotary embedding of a known family to fuse")
    original_rotary = getattr(module, "apply_rotary_pos_emb", None)
    for m in norms:
        m.forward = lambda h, m=m: norm(h, m.weight, m.variance_epsilon)
    if patch_rotary:
        module.apply_rotary_pos_emb = rotary
    try:
        # Round every intermediate to the model's dtype as eager bf16 ops do, so that the fused
        # step computes what generate() computes (inductor otherwise keeps them in float32).
        with inductor_config.patch(emulate_precision_casts=True):
            yield
    finally:
        for m in norms:
            del m.forward
        if patch_rotary:
            module.apply_rotary_pos_emb = original_rotary


def _signature(model: Any) -> tuple:
    """Changes whenever a captured graph would be stale: other weights, other active adapter."""
    ptrs = tuple(p.data_ptr() for p in model.parameters())
    adapters: tuple = ()
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        BaseTunerLayer = ()  # noqa: N806 - isinstance(x, ()) is always False
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            adapters = (tuple(module.active_adapters), bool(module.disable_adapters), bool(module.merged))
            break
    return ptrs, adapters, model.training


_RUNNERS_LOCK = threading.Lock()


def _runner_for(
    model: Any, max_len: int, config: FastDecodeConfig, device: torch.device, rows: int = 1
) -> _Runner:
    use_graph = config.cuda_graph and device.type == "cuda"
    fuse = use_graph and config.fuse
    # Chat (one row) and side-by-side grids (several) each keep their own runner, so that
    # alternating between them does not re-capture a graph every time.
    slot = "_playground_fast_decode" if rows == 1 else "_playground_fast_rows"
    with _RUNNERS_LOCK:
        runner = getattr(model, slot, None)
        if runner is not None and runner.lock.locked():
            raise Busy()
        if (
            runner is None
            or runner.max_len != max_len
            or runner.rows != rows
            or runner.use_graph != use_graph
            or runner.fuse != fuse
            or runner.signature != _signature(model)
        ):
            # Only one runner per slot: the old graph and cache are freed before the new ones.
            setattr(model, slot, None)
            runner = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
            runner = _Runner(model, max_len, use_graph, fuse, rows)
            setattr(model, slot, runner)
        runner.lock.acquire()
        return runner


def _cache_length(needed: int, model: Any, config: FastDecodeConfig) -> int:
    bucket = max(1, config.cache_bucket)
    length = -(-needed // bucket) * bucket
    base_config = base_model(model).config
    for limit in (
        getattr(base_config, "sliding_window", None),
        getattr(base_config, "max_position_embeddings", None),
    ):
        if limit:
            length = min(length, max(int(limit), needed))
    return length


def decode_tokens(
    model: Any,
    input_ids: torch.Tensor,
    settings: DecodingSettings,
    eos: set[int],
    should_stop: Callable[[], bool] | None = None,
    config: FastDecodeConfig | None = None,
) -> Iterator[int]:
    """Yield new token ids one by one (the eos that ends the answer included).

    Call `unsupported_reason` first; run under torch.inference_mode().
    """
    config = config or FastDecodeConfig()
    device = input_ids.device
    needed = int(input_ids.shape[1]) + int(settings.max_new_tokens)
    runner = _runner_for(model, _cache_length(needed, model, config), config, device)
    try:
        logits = runner.prefill(input_ids)
        runner.ensure_graph()
        row = RowSampling.start(settings, input_ids[0].tolist(), device)
        reader = _TokenReader(device)
        token = sample_next_token(logits, [row])
        for i in range(int(settings.max_new_tokens)):
            last = i + 1 == settings.max_new_tokens
            reader.start(token)
            if not last:
                # The next step is queued before this token reaches the host, so the GPU computes
                # it while the host streams this one; after eos or a stop it is simply unused.
                logits = runner.step(token)
            value = reader.value()
            row.observe(value)
            yield value
            if last or value in eos or (should_stop is not None and should_stop()):
                return
            token = sample_next_token(logits, [row])
    finally:
        runner.lock.release()


class _TokenReader:
    """Brings token ids to the host without waiting for work queued after them."""

    def __init__(self, device: torch.device, size: int = 1) -> None:
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.host = torch.empty(size, dtype=torch.long, pin_memory=True)
            self.event = torch.cuda.Event()
        self.token: torch.Tensor | None = None

    def start(self, token: torch.Tensor) -> None:
        self.token = token
        if self.cuda:
            self.host.copy_(token.view(-1), non_blocking=True)
            self.event.record()

    def values(self) -> list[int]:
        if self.cuda:
            self.event.synchronize()
            return self.host.tolist()
        return self.token.view(-1).tolist()

    def value(self) -> int:
        return self.values()[0]


def row_bucket(rows: int, model: Any = None) -> int:
    """Rows actually decoded for `rows` requested: a power of two, so few graphs are captured.

    At least MIN_ROWS: a 7B step reads the same weights for one row or four, so the spare rows
    cost little, and grids of one to four rows then run the same matrix kernels, which round
    each row the same way whatever the other rows hold: a column gives the same tokens alone as
    beside others. Not for bitsandbytes models: they have a one-row kernel that reads the
    quantized weights once, but dequantize whole matrices for more rows. int4 (tinygemm) layers
    read their weights once for any few rows, so int4 models take the bf16 route.
    """
    bucket = 1 << max(0, rows - 1).bit_length()
    if model is not None and _bitsandbytes_quantized(model):
        return bucket
    return max(bucket, MIN_ROWS)


def _bitsandbytes_quantized(model: Any) -> bool:
    return any(type(m).__name__ in ("Linear4bit", "Linear8bitLt") for m in model.modules())


def decode_rows(
    model: Any,
    input_ids: torch.Tensor,
    choose: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    limits: Sequence[int],
    eos: set[int],
    min_new_tokens: int = 0,
    should_stop: Callable[[], bool] | None = None,
    config: FastDecodeConfig | None = None,
) -> list[list[int]]:
    """New token ids of `len(limits)` continuations of one prompt, decoded side by side.

    The batched form of `decode_tokens` for the side-by-side grid: one static cache with a row
    per continuation and one captured step for all rows, so four columns cost about one (a 7B
    step reads the same weights for one row or four). `choose(ids, scores)` gets the rows' ids so
    far and their float32 next-token scores, and returns scores whose argmax is each row's token
    (a logits processor such as compare.py's per-row one). Row i ends at eos or after `limits[i]`
    tokens; eos is held back for the first `min_new_tokens`. Call `rows_unsupported_reason`
    first; run under torch.inference_mode().
    """
    config = config or FastDecodeConfig()
    rows, device = len(limits), input_ids.device
    width, steps = int(input_ids.shape[1]), max(int(n) for n in limits)
    # Spare rows up to the bucket repeat the prompt and decode greedily; nobody reads them.
    bucket = row_bucket(rows, model)
    runner = _runner_for(model, _cache_length(width + steps, model, config), config, device, bucket)
    history = torch.empty((rows, width + steps), dtype=torch.long, device=device)
    history[:, :width] = input_ids
    eos_index = torch.tensor(sorted(eos), dtype=torch.long, device=device)
    out: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows

    def pick(step: int, logits: torch.Tensor) -> torch.Tensor:
        # A copy: the captured step writes its logits into the same buffer every time.
        scores = logits.to(torch.float32, copy=True)
        if step < min_new_tokens and len(eos_index):
            scores.index_fill_(1, eos_index, -float("inf"))
        chosen = choose(history[:, : width + step], scores[:rows]).argmax(dim=-1)
        if bucket > rows:
            chosen = torch.cat([chosen, scores[rows:].argmax(dim=-1)])
        return chosen

    try:
        logits = runner.prefill(input_ids.expand(bucket, -1))
        runner.ensure_graph()
        reader = _TokenReader(device, bucket)
        tokens = pick(0, logits)
        for i in range(steps):
            last = i + 1 == steps
            reader.start(tokens)
            if not last:
                # Queued before this step's tokens reach the host: the GPU computes the next
                # step while the host checks for eos; after the last row ends it is unused.
                logits = runner.step(tokens)
            values = reader.values()
            for r in range(rows):
                if not done[r]:
                    out[r].append(values[r])
                    done[r] = values[r] in eos or len(out[r]) >= limits[r]
            if last or all(done) or (should_stop is not None and should_stop()):
                break
            history[:, width + i] = tokens[:rows]
            tokens = pick(i + 1, logits)
    finally:
        runner.lock.release()
    return out
