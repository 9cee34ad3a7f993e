# The two commands a newcomer runs: `make drill` and `make test`.
# Both install what they need first (apt packages as root, then the venv) and
# can be run again at any time.
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps

.PHONY: drill test lint bench lab-down deps

# make drill DRILL_ARGS=--offsite: the set goes through the lab's off-site restic repository (docs/keeping-backups.md)
drill: deps
	$(VENV)/bin/fab drill $(DRILL_ARGS)

# MAASOPS_LAB_REQUIRED: a lab test that cannot run (no root, no namespaces) fails instead of skipping.
# -n 3 --dist loadfile: three workers, each with its own labs, a test file to one worker (its
# module fixtures are built once); the tests mostly wait on sshd, units and PostgreSQL, not on CPU.
test: deps
	$(VENV)/bin/ruff check .
	MAASOPS_LAB_REQUIRED=1 $(VENV)/bin/pytest -q -n 3 --dist loadfile

lint: deps
	$(VENV)/bin/ruff check .

# Every benchmark in one invocation (47 min here for the run RESULTS.md records, at the sizes it lists). Writes benchmarks/RESULTS.md, the raw per-run
# numbers in benchmarks/results/<date>-<commit>.json and benchmarks/scaling.png. Sizes: see
# benchmarks/run_all.py SIZES (e.g. BENCH_DB_MB=500 BENCH_RUNS=3 BENCH_SCALE_MB=100,1024,4096).
bench: deps $(STAMPS)/bench
	$(PY) -m benchmarks.run_all

deps: $(STAMPS)/venv

$(STAMPS)/apt: tools/install-system-deps.sh
	bash tools/install-system-deps.sh
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: $(STAMPS)/apt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(STAMPS)/bench: $(STAMPS)/venv
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $@
