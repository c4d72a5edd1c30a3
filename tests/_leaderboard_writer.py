"""A separate process that writes to the leaderboard, for tests that kill it or let it die.

python -m tests._leaderboard_writer URL start  -> starts one run, prints its id, exits unfinished
python -m tests._leaderboard_writer URL loop   -> writes finished runs forever, printing each id
"""

from __future__ import annotations

import sys

from playground.leaderboard import ExampleResult, Leaderboard, RunSpec

N_EXAMPLES = 300


def spec(seed: int) -> RunSpec:
    return RunSpec(
        model="tiny", task="generation", dataset_name="kill-test", seed=seed, n_examples=N_EXAMPLES
    )


def main(url: str, mode: str) -> None:
    board = Leaderboard(url)
    if mode == "start":
        print(board.start_run(spec(0)), flush=True)
        return
    seed = 0
    while True:
        seed += 1
        run_id = board.start_run(spec(seed))
        examples = [
            ExampleResult(
                idx=i,
                prompt=f"prompt {i} " * 20,
                reference="床前明月光",
                prediction=f"prediction {seed}-{i}",
                metrics={"bleu": i / N_EXAMPLES},
                nll=[0.5 + j for j in range(40)],
                tokens=[f"t{j}" for j in range(40)],
            )
            for i in range(N_EXAMPLES)
        ]
        board.finish_run(run_id, {"bleu": seed / 100}, examples)
        print(run_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
