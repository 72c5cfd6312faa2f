# Two commands: `make reproduce` (default tier, all figures and claims) and `make test`.
# Both create .venv from requirements.lock on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: reproduce test lint install report benchmarks gpu-check clean-results

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	@echo
	@echo "Figures:       results/default/figures/  (executed notebooks in results/default/notebooks/)"
	@echo "Claims table:  results/default/tables/claims.md  (and claims.csv)"
	@echo "Report:        $(BIN)/snakemake --report results/default/report.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules

test: lint
	$(BIN)/pytest

report: $(STAMP)
	$(BIN)/snakemake --report results/default/report.html

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --out results/gpu_check.json

clean-results:
	rm -rf results/
