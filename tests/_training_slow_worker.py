"""The training worker, slowed down per step so a test can kill it mid-run.

The pause happens in the event listener, outside the maths, so results are unchanged.
"""

from __future__ import annotations

import sys
import time

from playground.training.worker import run_job

if __name__ == "__main__":
    status = run_job(sys.argv[1], lambda event: time.sleep(0.1) if event["type"] == "step" else None)
    sys.exit(0 if status.get("status") in ("finished", "stopped") else 1)
