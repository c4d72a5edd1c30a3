"""Fair turns on the model: one person may have only a few model requests waiting or running.

Gradio's queue is first come, first served per concurrency group, so one client that sends 80
chat requests puts 80 requests ahead of everyone who comes after. Here a request to join the
"model" group (loads, evaluations) or the "generation" group (chat and other generation, which the
engine batches) is refused at once, with a message, while its sender (the logged-in user, else
the browser session) already has `per_person` requests in them; everyone else then waits for at
most `per_person` requests of each other person.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

MODEL_GROUPS = ("model", "generation")


def _sender(username: str | None, session_hash: str | None) -> str:
    return f"user:{username}" if username else f"session:{session_hash}"


def _pending(queue: Any, sender: str) -> int:
    events = [
        e
        for group in MODEL_GROUPS
        for e in getattr(queue.event_queue_per_concurrency_id.get(group), "queue", [])
    ]
    events += [e for batch in queue.active_jobs if batch for e in batch]
    return sum(
        1
        for e in events
        if e.concurrency_id in MODEL_GROUPS and _sender(e.username, e.session_hash) == sender
    )


def install_fair_queue(demo: gr.Blocks, per_person: int) -> None:
    """After demo.queue(): refuse a model request from someone who already has `per_person`."""
    if per_person <= 0:
        return
    queue = demo._queue
    plain_push = queue.push

    async def fair_push(body: Any, request: Any, username: str | None) -> Any:
        fn = demo.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is not None and fn.concurrency_id in MODEL_GROUPS:
            sender = _sender(username, body.session_hash)
            if _pending(queue, sender) >= per_person:
                return (
                    False,
                    f"You already have {per_person} requests waiting for or using the model; this "
                    "playground is shared, so wait for one to finish.",
                    "queue_full",
                )
        return await plain_push(body, request, username)

    queue.push = fair_push
