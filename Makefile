# islandbridge — the two commands are `make demo` and `make test`; both bootstrap from a bare python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.9
DEMO_RESIDENTS ?= 3000
DEMO_GRID_PORT ?= 8701
DEMO_IOT_PORT ?= 8702
PYTEST_ARGS ?=

BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: demo test lint bench bench-district lock clean help

help:
	@echo "make demo   simulate a street, serve it, run the community_sync DAG through Airflow"
	@echo "make test   lint and run the test suite"
	@echo "make bench  run the benchmarks (numbers, not pass/fail)"
	@echo "make bench-district  the 300,000-resident whole run and daily increment"
	@echo "make lock   re-resolve requirements.lock from pyproject.toml"

# The environment: created on first use, re-synced when the lock or the project's metadata changes.
# Bytecode is compiled at install: each step of `make demo` and of the DAG is a fresh interpreter, and
# where PYTHONDONTWRITEBYTECODE is set it would otherwise compile its imports again every time
# (great_expectations, splink and pandas: ~8 s CPU instead of ~3 s; docs/performance.md).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "islandbridge needs Python 3.11 or newer")'
	@echo "make: installing the environment into $(VENV) from requirements.lock (first time: a few minutes, ~800 MB)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/islandbridge demo --workdir var/demo --residents $(DEMO_RESIDENTS) \
		--grid-port $(DEMO_GRID_PORT) --iot-port $(DEMO_IOT_PORT)

# pytest exits 5 when it collected no tests: for this suite that means it is broken, so say so and fail.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m islandbridge.devtools.lint_imports
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - treating that as a failure" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m islandbridge.devtools.lint_imports

# The benchmarks' peers (dlt, extra `bench`): installed for `make bench` only, at the versions of requirements.lock.
$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-bench.lock
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/islandbridge bench registry --residents 30000 --json var/bench/registry.json
	$(BIN)/islandbridge bench connectors --sizes 3000 30000 --json var/bench/connectors.json
	$(BIN)/islandbridge bench iot --sizes 3000 30000 --repeat 2 --json var/bench/iot.json
	$(BIN)/islandbridge bench pipeline --sizes 3000 30000 --json var/bench/pipeline.json
	$(BIN)/islandbridge bench reconcile --sizes 30000 --json var/bench/reconcile.json
	$(BIN)/islandbridge bench normalize --json var/bench/normalize.json
	$(BIN)/islandbridge eval matrix --sizes 3000 --json var/bench/linkage_matrix.json
	$(BIN)/islandbridge bench days --residents 30000 --days 30 --json var/bench/days.json

# A district: 300,000 residents, a whole run and then a changing day and a day without change
# (about 20 minutes and 4 GiB on a 2-core machine; docs/performance.md has the numbers).
bench-district: $(BENCH_STAMP)
	$(BIN)/islandbridge bench pipeline --sizes 300000 --json var/bench/pipeline-district.json
	$(BIN)/islandbridge bench days --residents 300000 --days 2 --unchanged 1 --json var/bench/days-district.json

# requirements.lock: everything `make demo` and `make test` install (every extra but `bench`);
# requirements-bench.lock: the same versions plus the benchmarks' peers (extra `bench`).
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes -q
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra airflow --extra quality --extra linkage --extra dev $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --all-extras -c requirements.lock $(LOCK_FLAGS) -o requirements-bench.lock

clean:
	rm -rf var .pytest_cache
