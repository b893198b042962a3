# Ladder's developer commands. Each creates the venv and installs what it needs on first run.
STACK ?= dev
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov

E2E_VENV := .venv-e2e

.PHONY: plan eject test lint typecheck pytest bench e2e validators restore clean attack

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# checkov pins packaging<24, which conflicts with pulumi: it gets its own venv.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

validators: $(VENV)/.installed $(CHECKOV_VENV)/.installed

## plan: evaluate STACK (default dev) under mocks; print resources, exposure, cost; write build/STACK/
plan: $(VENV)/.installed
	$(PY) -m tools.plan $(STACK)

## eject: write STACK as files that run without Pulumi (compose.yaml or manifests + helm values) under eject/STACK/
eject: $(VENV)/.installed
	$(PY) -m tools.eject $(STACK)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: validators
	$(VENV)/bin/pytest -n auto -q

## test: ruff, mypy and pytest (the offline validators run inside pytest)
test: lint typecheck pytest

## attack: hostile config values through validation and the real parsers; prints tried/refused/accepted/broken
attack: $(VENV)/.installed
	$(PY) -m tools.attack

## bench: evaluation time of each stack under mocks vs the floor (SDK imports + empty program)
bench: $(VENV)/.installed
	$(PY) -m tools.bench

# The bench's S3 stand-in (moto) lives apart from the program's venv.
$(E2E_VENV)/.installed: requirements-e2e.txt
	$(PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-e2e.txt
	touch $@

## e2e: the live bench (root): real servers from the program's user data, real deploys; see tools/e2e/README.md
e2e: $(VENV)/.installed $(E2E_VENV)/.installed
	$(PY) -m tools.e2e

## restore: print the restore steps for STACK (FROM=backup name, AT=RFC3339 time); runs nothing
restore: $(VENV)/.installed
	$(PY) -m tools.restore $(STACK) $(if $(FROM),--from $(FROM)) $(if $(AT),--at $(AT))

clean:
	rm -rf build eject .pytest_cache .mypy_cache .ruff_cache
