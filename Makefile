# Foreman — `make demo` and `make test` set everything up from a clean clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AEGRA_STAMP := .aegra/venv/.installed
EXAMPLES ?= report support
# Two workers, a test module each at a time (modules share session fixtures such as servers).
PYTEST_ARGS ?= -n 2 --dist loadfile
export LANGSMITH_TRACING ?= false
export LANGGRAPH_CLI_NO_ANALYTICS ?= 1
export LANGGRAPH_NO_VERSION_CHECK ?= true

.DEFAULT_GOAL := help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install Foreman with its dev tools

demo: $(STAMP) data ## Run the patterns offline: a cited report, then a customer reply (EXAMPLES=...)
	@for ex in $(EXAMPLES); do $(BIN)/foreman run --example $$ex --no-ask || exit $$?; done

data: data/support/shop.sqlite ## Create the sample customer-service database

data/support/shop.sqlite: workers/support/sample.py scripts/make_support_db.py | $(STAMP)
	$(BIN)/python scripts/make_support_db.py --out $@

lint: $(STAMP) ## ruff, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck_tree.py
	$(BIN)/mypy
	cd build/typecheck && PYTHONPATH=$(CURDIR) $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml

test: ## Lint, type-check and run every test (PostgreSQL, Redis)
	@# two jobs: the two virtualenvs install side by side, lint runs while Aegra's installs
	@$(MAKE) --no-print-directory --jobs=2 --output-sync=target test-setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-setup: $(STAMP) data lint $(AEGRA_STAMP)

$(AEGRA_STAMP): deploy/aegra/requirements.txt pyproject.toml
	$(PYTHON) deploy/aegra/cluster.py install  # stdlib only: needs no .venv

aegra-install: $(AEGRA_STAMP) ## Create .aegra/venv: Aegra (needs Python >= 3.12) and Foreman

aegra-up: $(AEGRA_STAMP) ## Serve Foreman from 2 Aegra instances on one PostgreSQL and Redis
	$(BIN)/python deploy/aegra/cluster.py up $(ARGS)

test-aegra: $(STAMP) data $(AEGRA_STAMP) ## Two Aegra instances, 20 runs, one killed mid-run
	$(BIN)/python -m pytest -q -s -m aegra tests/test_aegra.py

ui-install: ## Install Agent Chat UI (npm), Chromium (apt) and playwright-core under .ui/
	$(PYTHON) scripts/chat_ui.py install  # stdlib only: needs no .venv

test-ui: $(STAMP) data ui-install ## In headless Chromium: a request, the plan review accepted, the answer
	$(BIN)/python -m pytest -q -s -m ui tests/test_chat_ui.py

bench: $(STAMP) ## Scheduling, overhead, durability, plan checks, honest answers; writes bench/results/*.json
	$(BIN)/python -m bench.run $(ARGS)
	$(BIN)/python -m bench.durability
	$(BIN)/python -m bench.plan_checks
	$(BIN)/python -m bench.honesty

dev: $(STAMP) data ## Serve the graph with `langgraph dev` (offline) for LangGraph Studio
	$(BIN)/langgraph dev --no-browser

graph: $(STAMP) ## Print the graph as Mermaid
	$(BIN)/foreman graph

clean: ## Remove the virtualenv and local run data
	rm -rf $(VENV) .aegra .ui .foreman .langgraph_api build data/support/shop.sqlite tests/output

.PHONY: help install demo data lint test test-setup bench dev graph clean aegra-install aegra-up test-aegra ui-install test-ui
