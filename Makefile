# Two commands on a fresh machine: `make book` and `make test`. Everything else is set-up they share.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml tooling/pyproject.toml | sha1sum | cut -c1-12)
FAST ?=
FAST_FLAG := $(if $(FAST),--fast,)

.PHONY: setup book test test-sections check serve bench lock clean system-deps

setup: $(STAMP) system-deps ## create .venv, install torch first, then the tooling and the course, pinned, and the Debian packages (idempotent)

$(STAMP): requirements.lock pyproject.toml tooling/pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip<27"
	# torch first: 2.13.0 is the local CPU wheel; anything else would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	# The tooling (coursepress, tooling/pyproject.toml) and the course that depends on it.
	$(PIP) install --quiet -c requirements.lock -e "./tooling[test]" -e .
	# A venv from before the split: upgrading the old one-package install removed its `course` script.
	@test -x $(VENV)/bin/course || $(PIP) install --quiet --no-deps --force-reinstall -e ./tooling
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

system-deps: ## Debian packages for the browser tests and the grading sandbox (apt; sudo when not root)
	@.ci/system-deps.sh

book: setup ## build every section (full mode; FAST=1 for a quick preview) and the site
	$(VENV)/bin/course build $(FAST_FLAG)

check: setup ## prove the tests: solutions pass, stubs fail cleanly
	$(VENV)/bin/course check --fast

test: setup ## the test suite (well under 30 min on 2 cores)
	$(VENV)/bin/python -m pytest -q

test-sections: setup ## every real section's `course check --fast` and its headline results (~30 min)
	$(VENV)/bin/python -m pytest -q -m sections

serve: ## serve the built site on 127.0.0.1:8000
	$(VENV)/bin/course serve

bench: setup ## benchmarks (not part of `make test`)
	$(VENV)/bin/python -m bench

lock: ## re-resolve requirements.in into requirements.lock
	python3 -m venv /tmp/lock-venv && /tmp/lock-venv/bin/pip install -q torch==2.13.0 && \
	  /tmp/lock-venv/bin/pip install -q -r requirements.in && \
	  /tmp/lock-venv/bin/pip freeze | sed 's/+cpu//' > requirements.lock

clean:
	rm -rf dist book/_build book/generated book/_toc.yml
