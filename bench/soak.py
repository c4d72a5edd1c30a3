"""Soak: many concurrent chat sessions through gradio_client against the launched app.

Starts `python app.py --port P` (embedded model, CPU) on a fresh data folder, warms it up with
the same load, then runs N sessions for S seconds. Each session loops: submit a chat, read the
stream to its end, and now and then cancel mid-stream, as a user pressing stop or closing the
tab would. Counts completed, cancelled, cleanly refused (queue full) and errors; compares the
server's RSS after warm-up with the RSS at the end; and times how long a queued request waits
once the stream in front of it is cancelled, or its client is killed outright.

Run: python bench/soak.py [--sessions 20 --seconds 60]. The last line is
`soak: <ratio>x (memory at end vs after warm-up, ...)`. tests/test_reliability.py runs a small
version of the same sessions against an in-process app.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LONG_PROMPT = "Write a very long story about a dragon who learns to cook, with many chapters."
POLL_S = 0.02


@dataclass
class SoakStats:
    submitted: int = 0
    completed: int = 0
    cancelled: int = 0
    refused: int = 0  # queue full: the client got a clean QueueError and tried again later
    errors: list[str] = field(default_factory=list)
    max_queue_rank: int | None = None  # the position a waiting client was shown
    seconds_per_chat: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def accounted(self) -> bool:
        """Every submitted request ended one of the expected ways."""
        return self.submitted == self.completed + self.cancelled + self.refused + len(self.errors)

    def summary(self) -> str:
        per_chat = statistics.median(self.seconds_per_chat) if self.seconds_per_chat else float("nan")
        return (
            f"requests: {self.submitted} submitted, {self.completed} completed, {self.cancelled} cancelled "
            f"mid-stream, {self.refused} refused (queue full), {len(self.errors)} errors; "
            f"median {per_chat:.1f} s per completed chat (queue wait included); "
            f"highest queue position shown: {self.max_queue_rank}"
        )


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def _one_chat(client, stats: SoakStats, n: int, max_new_tokens: int, cancel: bool) -> None:
    from gradio_client.utils import QueueError, Status

    with stats.lock:
        stats.submitted += 1
    start = time.monotonic()
    job = client.submit(
        f"Tell me one fact about the number {n}.", "", max_new_tokens, 0.7, n, api_name="/chat"
    )
    while not job.done():
        status = job.status()
        if status.code == Status.IN_QUEUE and status.rank is not None:
            with stats.lock:
                stats.max_queue_rank = max(stats.max_queue_rank or 0, status.rank + 1)
        if cancel and len(job.outputs()) >= 2:
            job.cancel()
            with stats.lock:
                stats.cancelled += 1
            return
        time.sleep(POLL_S)
    try:
        text = job.result()
    except QueueError:
        with stats.lock:
            stats.refused += 1
        time.sleep(0.5)
        return
    except Exception as exc:  # noqa: BLE001 - every other way a chat can end is an error to report
        with stats.lock:
            stats.errors.append(f"{type(exc).__name__}: {exc}")
        return
    streamed = job.outputs()
    if not isinstance(text, str) or not text.strip() or not streamed or streamed[-1] != text:
        with stats.lock:
            stats.errors.append(f"stream ended badly: final {text!r}, {len(streamed)} updates")
        return
    with stats.lock:
        stats.completed += 1
        stats.seconds_per_chat.append(time.monotonic() - start)


def run_sessions(
    url: str,
    sessions: int,
    seconds: float,
    max_new_tokens: int = 32,
    cancel_fraction: float = 0.2,
    seed: int = 0,
) -> SoakStats:
    """`sessions` clients chat in a loop until `seconds` pass; chats in flight then finish."""
    stats = SoakStats()
    deadline = time.monotonic() + seconds

    def session(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        try:
            client = _client(url)
        except Exception as exc:  # noqa: BLE001
            with stats.lock:
                stats.errors.append(f"connect: {type(exc).__name__}: {exc}")
            return
        n = index * 10_000
        while time.monotonic() < deadline:
            n += 1
            _one_chat(client, stats, n, max_new_tokens, rng.random() < cancel_fraction)
        client.close()

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)


def _queued_behind(url: str, front_is_streaming) -> object:
    """A short chat submitted while the model is busy: it waits in the queue."""
    from gradio_client.utils import Status

    _wait(front_is_streaming, 120, "the long stream never started")
    job = _client(url).submit("Hi", "", 4, 0.7, 1, api_name="/chat")
    _wait(lambda: job.status().code == Status.IN_QUEUE, 30, "the next request was not queued")
    return job


def slot_free_after_cancel(url: str) -> tuple[float, float]:
    """(monotonic time of the cancel, seconds until the first text of the request queued behind)."""
    front = _client(url).submit(LONG_PROMPT, "", 1024, 0.7, 0, api_name="/chat")
    nxt = _queued_behind(url, lambda: len(front.outputs()) >= 3)
    start = time.monotonic()
    front.cancel()
    _wait(lambda: nxt.outputs() or nxt.done(), 60, "the queued request never started")
    took = time.monotonic() - start
    nxt.result()
    return start, took


_KILLED_CLIENT = """
import sys, time
from gradio_client import Client
job = Client(sys.argv[1], verbose=False, analytics_enabled=False).submit(sys.argv[2], "", 1024, 0.7, 0, api_name="/chat")
while len(job.outputs()) < 3:
    time.sleep(0.01)
print("streaming", flush=True)
time.sleep(600)
"""


def slot_free_after_disconnect(url: str) -> tuple[float, float]:
    """Like slot_free_after_cancel, but the streaming client's process is killed (SIGKILL)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CLIENT, url, LONG_PROMPT], stdout=subprocess.PIPE, text=True
    )
    try:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        nxt = _queued_behind(url, lambda: bool(first_line))
        start = time.monotonic()
        proc.kill()
        _wait(lambda: nxt.outputs() or nxt.done(), 60, "the queued request never started")
        took = time.monotonic() - start
        nxt.result()
        return start, took
    finally:
        proc.kill()
        proc.wait()


# -- the launched app ----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(folder: Path, threads: int = 0) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(
        os.environ,
        PLAYGROUND_DATA_DIR=str(folder / "data"),
        PLAYGROUND_ADAPTERS_DIR=str(folder / "adapters"),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    env.pop("PLAYGROUND_AUTH", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log = open(folder / "app.log", "wb")  # noqa: SIM115 - lives as long as the app
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited: {(folder / 'app.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not start within 300 s") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup-seconds", type=float, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--trials", type=int, default=3, help="slot-freeing measurements of each kind")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in the app (OMP_NUM_THREADS); 1 because busy-waiting threads on a shared "
        "2-core machine make decoding several times slower; 0 = torch's default",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = launch_app(Path(tmp), args.threads)
        print(f"app: pid {proc.pid}, {args.threads or 'default'} torch thread(s), queue as in app.py")
        try:
            started = time.monotonic()
            warm = run_sessions(url, args.sessions, args.warmup_seconds, args.max_new_tokens, seed=1)
            warm_rss = rss_mb(proc.pid)
            print(f"warm-up ({args.warmup_seconds:.0f} s): {warm.summary()}")
            print(f"server RSS after warm-up: {warm_rss:.0f} MB")
            stats = run_sessions(url, args.sessions, args.seconds, args.max_new_tokens, seed=2)
            end_rss = rss_mb(proc.pid)
            print(f"soak ({args.sessions} sessions x {args.seconds:.0f} s): {stats.summary()}")
            for message in stats.errors[:5]:
                print(f"  error: {message}")
            print(f"every request accounted for: {stats.accounted}")
            cancel = [slot_free_after_cancel(url)[1] for _ in range(args.trials)]
            killed = [slot_free_after_disconnect(url)[1] for _ in range(args.trials)]
            print(
                "next request's first text after a cancel: "
                + ", ".join(f"{s:.2f}" for s in cancel)
                + f" s (median {statistics.median(cancel):.2f} s)"
            )
            print(
                "next request's first text after its client was killed: "
                + ", ".join(f"{s:.2f}" for s in killed)
                + f" s (median {statistics.median(killed):.2f} s)"
            )
            print(f"server RSS at the end: {end_rss:.0f} MB (whole run {time.monotonic() - started:.0f} s)")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    print(
        f"soak: {end_rss / warm_rss:.2f}x (memory at end vs after warm-up, {args.sessions} sessions x "
        f"{args.seconds:.0f} s, embedded model, CPU)"
    )


if __name__ == "__main__":
    main()
