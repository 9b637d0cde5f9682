# The README's commands. `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# The CPU build of torch; on a GPU machine: make setup TORCH_SPEC='torch==2.13.0' PIP_EXTRA='--index-url ...'
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup demo report test test-fast lint format bench clean-results

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## create .venv and install the project with its dependencies

DEMO := results/digits/baseline
REGRESSION := results/diabetes
demo: setup  ## run the examples: digits/baseline (mlp, cnn) and diabetes (regression: 2 runs, a sweep)
	$(BIN)/snakemake --cores $(CORES) $(DEMO)/summary.csv $(DEMO)/plots/comparison.png \
		$(DEMO)/mlp/run.json $(DEMO)/cnn/run.json \
		$(REGRESSION)/baseline/summary.csv $(REGRESSION)/baseline/plots/comparison.png \
		$(REGRESSION)/baseline/mlp/run.json $(REGRESSION)/baseline/wide/run.json \
		$(REGRESSION)/sweep/summary.csv
	$(BIN)/python main.py ls -p digits -e baseline
	$(BIN)/python main.py ls -p diabetes -e baseline
	$(BIN)/python main.py ls -p diabetes -e sweep

report: setup  ## build every run and its plots, then report.html (open it in a browser)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report report.html

# pytest-xdist workers, one more than the cores: the SLURM tests (tests/conftest.py gives them
# one worker, first) mostly wait for the cluster. Tests sharing a trained fixture stay on one
# worker, and the 20 slowest tests are printed at the end (docs/development.md: time budget).
PYTEST_ARGS ?= -n $(shell echo $$(($(CORES) + 1))) --dist loadgroup --durations=20
test: setup  ## run the whole test suite (the slow workflow tests included; budget 10 min)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup  ## run the tests that take seconds (no workflow runs or warm servers; budget 2 min)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup  ## ruff, snakefmt and snakemake --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/ dltemplate/workflow/ dltemplate/scaffold/project/
	$(BIN)/snakemake --lint --cores 1

format: setup  ## format the code (ruff) and the workflow (snakefmt)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules/ dltemplate/workflow/ dltemplate/scaffold/project/

bench: setup  ## run bench/ (long: the 1,000-run sweeps dominate) and rewrite BENCHMARKS.md
	$(BIN)/python -m bench

# bench/gpu_check.sh on a lent GPU machine that has torch and Lightning but not Snakemake: the
# engine's wheel and the other dependencies it lacks, for the machine's `carry` (64 MiB at most).
GPU_WHEELS = "snakemake>=9,<10" "ruamel.yaml>=0.18" "jsonschema>=4" rich pytest pytest-timeout
gpu-wheels: setup  ## wheels for bench/gpu_check.sh on a GPU machine without Snakemake (.gpu_wheels/)
	rm -rf .gpu_wheels
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir .gpu_wheels .
	$(BIN)/pip download --quiet --only-binary=:all: --dest .gpu_wheels $(GPU_WHEELS) $(GPU_WHEELS_EXTRA)
	@du -sh .gpu_wheels

clean-results:  ## delete results/ (every run's outputs, checkpoints included)
	rm -rf results/*/ .snakemake/
