"""A training worker stand-in whose process outlives its "stopped" status by a moment.

First run: running until the STOP file appears, then "stopped", then a second of cleanup before
the process exits with 0 (as a real worker does while it frees memory). Later runs finish at once.
Each run appends "run" to runs.txt.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from playground.training.job_files import TrainingJob, now

if __name__ == "__main__":
    job = TrainingJob(sys.argv[1])
    runs = job.dir / "runs.txt"
    first = not runs.exists()
    with open(runs, "a") as f:
        f.write("run\n")
    job.update_status(status="running", pid=os.getpid(), message="training", started=now())
    if first:
        while not job.stop_file.exists():
            time.sleep(0.02)
        job.update_status(status="stopped", message="stopped at step 1", ended=now())
        time.sleep(1.0)
    else:
        job.update_status(status="finished", message="finished", ended=now())
    Path(job.dir / "exit").write_text("0")
    sys.exit(0)
