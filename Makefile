# `make run`: start the app on the embedded model; `make test`: the whole test suite.
# Each installs what it needs first (scripts/setup.sh), so both work on a fresh clone.
.PHONY: run test lint bench

run:
	bash scripts/setup.sh
	.venv/bin/python app.py

test:
	bash scripts/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python bench/chat_latency.py
	.venv/bin/python bench/perplexity.py
