# Everything runs from venvs inside the repo; a fresh clone needs only python3.13 (or 3.12+) and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# pyenv machines expose python3.13 only when it is named; harmless elsewhere.
export PYENV_VERSION ?= 3.11.7:3.13.0
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

BOOT_PYTHON := $(shell export PYENV_VERSION=$(PYENV_VERSION); for p in python3.13 python3.12 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
PYTEST_WORKERS ?= 2

.PHONY: help venv demo test lint typecheck template-check browser-deps unit integration e2e build serve clean

help:
	@echo "make demo   - run the whole story on the local embedded runtime"
	@echo "make test   - lint, type-check, template checks and all tests"
	@echo "make build  - sam build (arm64, python3.13)"
	@echo "make serve  - run the local runtime as a server on 127.0.0.1:8787"

$(VENV)/.installed: pyproject.toml
	@test -n "$(BOOT_PYTHON)" || { echo "need python 3.12+ (python3.13 preferred)"; exit 1; }
	$(BOOT_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	@test -n "$(BOOT_PYTHON)" || { echo "need python 3.12+ (python3.13 preferred)"; exit 1; }
	$(BOOT_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q aws-sam-cli
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/consentry demo

serve: venv
	$(VENV)/bin/consentry local serve

lint: venv
	$(VENV)/bin/ruff check functions infra tests benchmarks
	$(VENV)/bin/ruff format --check functions infra tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy

template-check: venv $(SAM_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

# The browser tests drive Debian's chromium with its chromedriver; install them when missing.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		echo "installing Debian chromium and chromium-driver for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

test: lint typecheck template-check browser-deps
	$(PY) -m pytest -n $(PYTEST_WORKERS) tests

unit: venv
	$(PY) -m pytest tests/unit

build: $(SAM_VENV)/.installed
	PYENV_VERSION=3.11.7:3.13.0 $(SAM) build --template template.yaml

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
