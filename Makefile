# allpath: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev,fhir,web,cohort,spark

.PHONY: install run demo test test-fast lint typecheck bench bench-cds bench-http bench-cohort schemas docs-updates bench-packs clean

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
	$(BIN)/mypy

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

schemas: install
	mkdir -p schemas
	$(BIN)/allpath schema facts > schemas/patient-facts.schema.json
	$(BIN)/allpath schema plan > schemas/plan.schema.json

bench-packs: install
	$(BIN)/python benchmarks/bench_packs.py

# docs/knowledge-updates.md is generated from the packs; tests/test_packs.py checks it is current.
docs-updates: install
	mkdir -p docs
	$(BIN)/allpath kb diff base updates-2026 --format markdown > docs/knowledge-updates.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info src/*.egg-info

.PHONY: bench-fhirpath
bench-fhirpath: install
	$(BIN)/python benchmarks/bench_fhirpath.py
