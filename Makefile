# Gorax: `make up` runs the embedded stack, `make test` runs the tests. Both set up what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.gorax-installed
# A third-party node plugin the tests use (registered through its entry point alone).
TEST_PLUGIN := $(VENV)/.gorax-test-plugin
WEB_DIST := web/dist/index.html
PYTEST_ARGS ?=
# TEST_WORKERS=2 runs test files in two processes (one Prefect server each); 0 runs them in one.
TEST_WORKERS ?= 0

export LITELLM_LOCAL_MODEL_COST_MAP := True
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# Byte-code caching matters: without it every subprocess re-compiles Prefect and alembic.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: up test test-soak test-scale install web bench lint clean

up: install $(if $(wildcard web/package.json),$(WEB_DIST))
	$(VENV)/bin/gorax up

test: install $(TEST_PLUGIN) $(if $(wildcard web/package.json),$(WEB_DIST))
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-soak: install
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

# The production topology on 127.0.0.1 (docs/operations.md): 2 Prefect APIs + services on
# PostgreSQL and Redis, 2 Gorax APIs, 2 workers; 1,000 webhooks, a killed worker, 1,000 approvals.
test-scale: install
	$(UV) pip install --python $(PY) -q 'prefect-redis>=0.3,<0.4'
	$(PY) scale/run.py

install: $(STAMP)

$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q uv

$(STAMP): pyproject.toml | $(PY)
	$(UV) pip install --python $(PY) -q -e '.[test]'
	touch $(STAMP)

$(TEST_PLUGIN): tests/plugin/pyproject.toml | $(STAMP)
	$(UV) pip install --python $(PY) -q -e tests/plugin
	touch $(TEST_PLUGIN)

web: $(if $(wildcard web/package.json),web/node_modules/.package-lock.json)
	cd web && npm run build

web/node_modules/.package-lock.json: web/package.json $(wildcard web/package-lock.json)
	cd web && npm ci --no-audit --no-fund

$(WEB_DIST): $(shell find web/src web/index.html web/package.json -type f 2>/dev/null) | web/node_modules/.package-lock.json
	cd web && npm run build

# Static checks: lint, layout, types, and the import arrows between packages.
lint: install
	$(UV) pip install --python $(PY) -q ruff mypy import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy translator flows blocks api
	$(VENV)/bin/lint-imports

bench: install $(if $(wildcard web/package.json),$(WEB_DIST))
	$(UV) pip install --python $(PY) -q -e bench/plugin
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) web/node_modules web/dist
