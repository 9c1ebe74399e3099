# Foreman — `make demo` and `make test` set everything up from a clean clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make demo` installs Foreman alone (what the offline examples need); `make test`
# and the targets that use the dev tools install Foreman with every extra and the dev tools,
# in one pip run that covers the runtime too. A demo-only .venv never passes for a dev one.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
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

# pip prints a line per package it collects, downloads (with a progress bar on a terminal)
# and installs: no --quiet, so a first install shows where it is.
NEW_VENV = @if [ ! -x $(BIN)/pip ]; then \
	echo "==> creating $(VENV) with $$($(PYTHON) --version), upgrading its pip"; \
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --upgrade pip; fi

$(RUNTIME_STAMP): pyproject.toml
	$(NEW_VENV)
	@echo "==> installing Foreman and what the offline examples need (no extras)"
	$(BIN)/pip install -e .
	@touch $@
	@echo "==> $(VENV): Foreman installed ($$(du -sh $(VENV) | cut -f1))"

$(DEV_STAMP): pyproject.toml
	$(NEW_VENV)
	@echo "==> installing Foreman, every extra (postgres, data, web, docs, mcp, a2a) and the dev tools"
	$(BIN)/pip install -e ".[dev]"
	@touch $(RUNTIME_STAMP) $@
	@echo "==> $(VENV): Foreman, its extras and dev tools installed ($$(du -sh $(VENV) | cut -f1))"

install: $(DEV_STAMP) ## Create .venv: Foreman, every extra and the dev tools

demo: $(RUNTIME_STAMP) data ## Install Foreman alone; run a cited report and a customer reply offline (EXAMPLES=...)
	@for ex in $(EXAMPLES); do echo "==> foreman run --example $$ex"; \
		$(BIN)/foreman run --example $$ex --no-ask || exit $$?; done

data: data/support/shop.sqlite ## Create the sample customer-service database

# The script needs Foreman alone; on the way to a target that installs the dev tools it waits
# for that install instead (one pip at a time in .venv under `make -j`).
DATA_VENV := $(if $(filter-out demo data graph,$(MAKECMDGOALS)),$(DEV_STAMP),$(RUNTIME_STAMP))
data/support/shop.sqlite: workers/support/sample.py scripts/make_support_db.py | $(DATA_VENV)
	$(BIN)/python scripts/make_support_db.py --out $@

lint: $(DEV_STAMP) ## ruff, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck_tree.py
	$(BIN)/mypy
	cd build/typecheck && PYTHONPATH=$(CURDIR) $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml

test: ## Lint, type-check and run every test (PostgreSQL, Redis)
	@# two jobs: the two virtualenvs install side by side, lint runs while Aegra's installs
	@$(MAKE) --no-print-directory --jobs=2 --output-sync=target test-setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-setup: $(DEV_STAMP) data lint $(AEGRA_STAMP)

$(AEGRA_STAMP): deploy/aegra/requirements.txt pyproject.toml
	$(PYTHON) deploy/aegra/cluster.py install  # stdlib only: needs no .venv

aegra-install: $(AEGRA_STAMP) ## Create .aegra/venv: Aegra (needs Python >= 3.12) and Foreman

aegra-up: $(DEV_STAMP) $(AEGRA_STAMP) ## Serve Foreman from 2 Aegra instances on one PostgreSQL and Redis
	$(BIN)/python deploy/aegra/cluster.py up $(ARGS)

test-aegra: $(DEV_STAMP) data $(AEGRA_STAMP) ## Two Aegra instances, 20 runs, one killed mid-run
	$(BIN)/python -m pytest -q -s -m aegra tests/test_aegra.py

ui-install: ## Install Agent Chat UI (npm), Chromium (apt) and playwright-core under .ui/
	$(PYTHON) scripts/chat_ui.py install  # stdlib only: needs no .venv

test-ui: $(DEV_STAMP) data ui-install ## In headless Chromium: a request, the plan review accepted, the answer
	$(BIN)/python -m pytest -q -s -m ui tests/test_chat_ui.py

bench: $(DEV_STAMP) ## Scheduling, overhead, durability, plan checks, honest answers, adaptive vs strong-only; writes bench/results/*.json
	$(BIN)/python -m bench.run $(ARGS)
	$(BIN)/python -m bench.durability
	$(BIN)/python -m bench.plan_checks
	$(BIN)/python -m bench.honesty
	$(BIN)/python -m bench.adaptive

# Studio shows every worker attempt's saved state (the default keeps only failed ones).
dev: export FOREMAN_WORKER_DURABILITY ?= async
dev: $(DEV_STAMP) data ## Serve the graph with `langgraph dev` (offline) for LangGraph Studio
	$(BIN)/langgraph dev --no-browser

graph: $(RUNTIME_STAMP) ## Print the graph as Mermaid
	$(BIN)/foreman graph

clean: ## Remove the virtualenv and local run data
	rm -rf $(VENV) .aegra .ui .foreman .langgraph_api build data/support/shop.sqlite tests/output

.PHONY: help install demo data lint test test-setup bench dev graph clean aegra-install aegra-up test-aegra ui-install test-ui
