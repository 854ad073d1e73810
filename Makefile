# The two commands: `make repro` (the whole pipeline) and `make test`. Both build .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv repro test test-paper mutants chromium lock clean-venv

venv:
	@$(PYTHON) -m alabench.bootstrap

# PROFILE=paper runs params.paper.yaml (the paper's scale) as the DVC experiment `paper`, in a
# temporary copy: params.yaml and the workspace's results stay as they are (docs/reproducing.md).
# PROFILE_ARGS="--name N --set key=value" runs it with a key changed, as the experiment N.
repro: venv
	@if [ -n "$(PROFILE)" ]; then python -m alabench.profiles --experiment params.$(PROFILE).yaml $(PROFILE_ARGS); \
	else python -m dvc repro; fi

# Two pytest-xdist workers (TEST_JOBS); worksteal: an idle worker takes tests queued for the other (the
# pipeline tests last seconds to minutes). Pieces: `python -m pytest -n 2 -m "not pipeline"` (unit tests), `-m pipeline`.
test: venv chromium
	python -m pytest -n $${TEST_JOBS:-2} --dist worksteal $(PYTEST_ARGS)

# The paper profile run for real on footage served from 127.0.0.1 (minutes: CI runs it after `make test`).
test-paper: venv
	python -m pytest tests/paper_path_run.py $(PYTEST_ARGS)

# Break the code on purpose in temporary copies, one change at a time, and show which test catches it:
# only the tests each break names run, MUTANT_JOBS breaks at a time (CI runs it after `make test`).
mutants: venv
	python tests/mutants.py --jobs $${MUTANT_JOBS:-2} $(MUTANTS)

# The report test opens the page in real headless Chromium (Debian's package), installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { s=""; [ "$$(id -u)" = 0 ] || s=sudo; \
		$$s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -qq chromium; }

# Regenerate requirements.lock from pyproject.toml's direct dependencies, in a scratch venv.
lock:
	rm -rf /tmp/alabench-lock && $(PYTHON) -m venv /tmp/alabench-lock
	/tmp/alabench-lock/bin/pip install --quiet .
	/tmp/alabench-lock/bin/pip freeze --exclude alabench > requirements.lock

clean-venv:
	rm -rf $(VENV)
