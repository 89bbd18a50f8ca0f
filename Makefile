# allpath: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Serving needs the web and FHIR extras only; the tests need everything (pytest, playwright,
# the cohort engines, Spark), Debian's chromium and axe-core from npm.
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed
SERVE_EXTRAS := web,fhir
EXTRAS := dev,fhir,web,cohort,spark
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-serve run demo test test-fast lint typecheck bench bench-cds bench-http bench-floor bench-cohort schemas docs-updates bench-packs clean

# Everything the tests need.
install: $(STAMP) browser-deps node-deps

# Only what serving needs (no test tooling, no npm).
install-serve: $(SERVE_STAMP) pdf-deps

# Re-install when the project's dependencies change; otherwise these are no-ops.
$(SERVE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(SERVE_EXTRAS)]"
	@touch $(SERVE_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP) $(SERVE_STAMP)

# The real service on embedded defaults: migrate, seed the FAKE demo, then serve, ending its
# output with the address and the demo log-ins (uvicorn logs warnings only, so they stay in view).
run: install-serve
	@$(BIN)/allpath db upgrade
	@$(BIN)/allpath db seed-demo > $(VENV)/demo-logins.txt
	@echo ""
	@echo "allpath is serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	@echo "  care team: http://$(HOST):$(PORT)/clinic/patients   family: http://$(HOST):$(PORT)/my-plan"
	@echo "  API docs:  http://$(HOST):$(PORT)/docs             learn:  http://$(HOST):$(PORT)/learn"
	@tail -n +2 $(VENV)/demo-logins.txt
	@$(BIN)/allpath serve --host $(HOST) --port $(PORT) --log-level warning

# A text plan for a bundled example, and the list of examples.
demo: install-serve
	$(BIN)/allpath demo

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
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

# Bounded loopback load (200 req/s for 20 s) on POST /recommend and GET /patients/{id}/plan.
# Three consecutive runs with one worker; then, stepping the rate, the highest rate each of 1 and 2
# workers sustains with p99 <= 25 ms (docs/benchmarks-http.md).
bench-http: install
	$(BIN)/python benchmarks/bench_http.py --rate 200 --seconds 20 --repeat 3 --workers 1
	$(BIN)/python benchmarks/bench_http.py --find-max --rate 100 --seconds 10 --workers 1,2 --json bench-results/http-workers.json

# Server CPU per request of each endpoint as a multiple of a minimal FastAPI endpoint, same run (docs/benchmarks.md).
bench-floor: install
	$(BIN)/python benchmarks/bench_floor.py --rounds 5

# CDS Hooks patient-view under a bounded loopback load (100 requests/s for 20 s); writes bench-results/cds.md.
bench-cds: install
	$(BIN)/python benchmarks/bench_cds.py

bench-cohort: install
	$(BIN)/python benchmarks/bench_cohort.py

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
	$(BIN)/allpath kb diff base,updates-2026 base,updates-2026,practice-2026 --format markdown > docs/knowledge-practice.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info src/*.egg-info

.PHONY: bench-fhirpath
bench-fhirpath: install
	$(BIN)/python benchmarks/bench_fhirpath.py

# --- web pages (docs/web.md) -------------------------------------------------------------------
.PHONY: browser-deps pdf-deps node-deps test-browser

# System libraries the web layer needs: Debian's chromium for the browser tests (never a browser
# downloaded by Playwright) and pango for WeasyPrint's PDF. Installed only when missing and when
# running as root; otherwise say what to install (the browser tests then skip with that reason).
browser-deps: pdf-deps
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: apt-get install chromium (browser tests will skip)"; fi; }

pdf-deps:
	@{ /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -q 'libpangoft2-1.0.so.0' || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; \
	  else echo "pango is missing: apt-get install libpango-1.0-0 libpangoft2-1.0-0 (PDF download needs it)"; fi; }

# axe-core (accessibility checks injected into each page by the browser tests), from npm, not saved
# to any package.json; node_modules/ is git-ignored.
node-deps: node_modules/axe-core/axe.min.js

node_modules/axe-core/axe.min.js:
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "npm is missing: apt-get install nodejs npm"; exit 1; fi; }
	npm install --no-save --no-audit --no-fund --silent axe-core@4

test-browser: install
	$(BIN)/python -m pytest -q -m browser tests/web

.PHONY: i18n-extract
# Refresh the catalog template from the templates and code; then `pybabel update` the Spanish .po
# (docs/family.md). The .po files are read at start: nothing to compile.
i18n-extract: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --omit-header -o src/allpath/web/locale/messages.pot .
	$(BIN)/pybabel update -i src/allpath/web/locale/messages.pot -d src/allpath/web/locale -l es --no-location --omit-header
