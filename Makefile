# allpath: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev,fhir,web,cohort,spark

.PHONY: install run demo test test-fast lint typecheck bench bench-cds bench-http bench-cohort schemas clean

install: $(STAMP)

# Re-install when the project's dependencies change; otherwise this is a no-op.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

run: install
	$(BIN)/allpath demo

demo: run

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

test-fast: install
	$(BIN)/python -m pytest -q -x -m "not slow and not browser"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_engine.py

bench-cohort: install
	$(BIN)/python benchmarks/bench_cohort.py

schemas: install
	mkdir -p schemas
	$(BIN)/allpath schema facts > schemas/patient-facts.schema.json
	$(BIN)/allpath schema plan > schemas/plan.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info src/*.egg-info
