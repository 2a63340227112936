# The two commands of the README:
#   make run   bootstrap .venv and start Regelmotor on its embedded defaults
#   make test  bootstrap .venv and run the whole test suite (ruff, import rules, mypy, pytest)

# durable_rules does not load on Python 3.13: pick 3.11 or 3.12.
PYTHON ?= $(or $(firstword $(shell command -v python3.11 python3.12 2>/dev/null)),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean protos

# Three projects, installed together so the server and the client find regelmotor-api here, not on an index:
#   protos/python   regelmotor-api     the generated stubs and the facts-file reader
#   clients/python  regelmotor-client  the Python client and its command
#   .               regelmotor         the server, the engine and the `regelmotor` command
PROJECTS := -e protos/python -e clients/python -e '.[dev]'

$(STAMP): pyproject.toml protos/python/pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' || \
	  { echo "Python 3.11 or 3.12 is required (durable_rules does not load on 3.13); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PROJECTS)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/regelmotor serve --console 127.0.0.1:8080

# ruff, then the import rules of pyproject.toml's [tool.importlinter] (core free of server, store, console and cli;
# store free of server; the v1 stubs imported only by the server and the client), then no function above
# cyclomatic grade C (radon prints every one of grade D or worse) and no dead code (vulture, [tool.vulture]).
COMPLEXITY_PATHS := services/rules clients/python protos/python/regelmotor_api/facts.py
# lint-imports reads the packages where Python finds them: this tree's, not those an editable install elsewhere put
# on the venv's path (a second worktree sharing one venv would otherwise check the other tree and pass).
IMPORT_PATH := PYTHONPATH=services/rules:protos/python:clients/python
lint: $(STAMP)
	$(BIN)/ruff check services clients protos/python tests bench vulture_whitelist.py
	$(IMPORT_PATH) $(BIN)/lint-imports --no-logo
	@complex="$$($(BIN)/radon cc --min D --show-complexity $(COMPLEXITY_PATHS))"; \
	  if [ -n "$$complex" ]; then echo "$$complex"; echo "radon: split these functions to grade C or better"; exit 1; fi
	$(BIN)/vulture

typecheck: $(STAMP)
	$(BIN)/mypy

# The Node.js client test (tests/test_node_client.py) needs tests/node's npm packages. Without npm it
# is skipped on a developer machine; in CI (CI=true) npm must be there and the test must run.
pytest: $(STAMP)
	@if [ -f tests/node/package-lock.json ] && { command -v npm >/dev/null 2>&1 || [ "$$CI" = true ]; }; then \
	  echo "npm ci --prefix tests/node --no-audit --no-fund"; npm ci --prefix tests/node --no-audit --no-fund; \
	else echo "npm not found: the Node.js client test (tests/test_node_client.py) will be skipped"; fi
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

# Regenerate the Python stubs (package regelmotor_api.v1) from protos/ (committed; tests/test_api_contract.py
# checks they match).
protos: $(STAMP)
	$(BIN)/python protos/python/generate_stubs.py
