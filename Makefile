# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   - the main job: reproduce the paper's comparisons as a report
#   make test   - the test suite
# Each creates .venv when missing, installs mclviz editable with its extras, installs
# Debian's chromium (for kaleido's static export and the browser test) when missing
# and the user is root, then runs. A second run only re-installs when pyproject.toml
# changed, so it is quick.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mclviz-installed
SHARED_DATA := $(abspath ../shared/data)
export MCLVIZ_DATA ?= $(if $(wildcard $(SHARED_DATA)/cifar10.zip),$(SHARED_DATA),$(CURDIR)/data)

.PHONY: setup demo test lab bench lint chromium clean-venv

setup: $(STAMP) chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium (for static figure export and the browser test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: chromium is missing and this user cannot apt-get it; static plotly export and the browser test will say so"; \
	  fi; \
	fi

demo: setup
	$(PY) -m mclviz reproduce

test: setup
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = "0" ] && echo --allow-root)

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check mclviz tests benchmarks scripts
	$(VENV)/bin/ruff format --check mclviz tests benchmarks scripts

clean-venv:
	rm -rf $(VENV)
