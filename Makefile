# The two commands of the README: `make demo` and `make test`. Each sets up everything itself.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system-deps demo test test-all bench clean

system-deps:
	@bash scripts/system_deps.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: kws needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing kws and its Python dependencies into $(VENV) (first time: ~1 min)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,tts,confusables]'
	@touch $@

setup: system-deps $(STAMP)

demo: setup
	$(BIN)/kws demo

# pytest exit code 5 ("no tests collected") is a failure here, not a pass.
test: setup
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test-all: setup
	@$(BIN)/python -m pytest -q -m "slow or not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

bench: setup
	$(BIN)/kws bench features

clean:
	rm -rf $(VENV) runs build *.egg-info
