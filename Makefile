# Two commands matter: `make local` (run the whole stack on this machine) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUTPUTS ?= .wsauth/outputs.json

.PHONY: local test lint bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The browser tests drive Debian's Chromium; install it when it is missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium from Debian's packages for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

local: $(STAMP)
	$(BIN)/wsauth local --outputs $(OUTPUTS)

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy components handlers wsauth

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .wsauth .pytest_cache
