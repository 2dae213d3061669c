# Developer entry points. Only python3 is required: targets that need it create .venv and
# install the project; the database is $DATABASE_URL if set, else an embedded PostgreSQL
# (app/devdb.py) started on demand and left running until `make stop-db`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# `stop-db` and `clean` must work before (or without) the venv: devdb's stop is stdlib only.
ANY_PY := $(if $(wildcard $(PY)),$(PY),python3)

# Recipe prefix: export DATABASE_URL (checked, its database created if missing; without it the
# embedded server is started) and migrate to every head: ours, and the branch of each user
# package in JOBS_MIGRATIONS (one head when there is none). Commands after it see DATABASE_URL.
WITH_DB = set -euo pipefail; \
	DATABASE_URL="$$($(PY) -m app.devdb start)"; export DATABASE_URL; \
	$(VENV)/bin/alembic upgrade heads;

.PHONY: help venv db run demo test bench lint stop-db clean

help:
	@echo "make run      migrate, then start workers and scheduler with a live status table"
	@echo "make demo     migrate, then run the demo"
	@echo "make test     run the test suite (PYTEST_ARGS='-k name' to pass arguments)"
	@echo "make bench    migrate, then run the benchmarks"
	@echo "make lint     ruff + mypy"
	@echo "make db       start the database if needed and migrate it"
	@echo "make stop-db  stop the embedded PostgreSQL"
	@echo "make clean    stop the embedded PostgreSQL and delete .data"

venv: $(STAMP)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) -e '.[dev]'
	@touch $@

$(BENCH_STAMP): $(STAMP)
	$(PIP) -e '.[dev,bench]'
	@touch $@

db: venv
	@$(WITH_DB)

run: venv
	@$(WITH_DB) exec $(PY) -m app.run

demo: venv
	@$(WITH_DB) exec $(PY) -m app.demo

# The tests start the embedded server themselves (tests/conftest.py) when DATABASE_URL is unset.
test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(BENCH_STAMP)
	@$(WITH_DB) exec $(PY) -m bench

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy app

stop-db:
	@$(ANY_PY) -m app.devdb stop

# A JOBS_DATA_DIR outside the tree is stopped but not deleted.
clean: stop-db
	rm -rf .data
