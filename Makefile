# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv, install, and fetch the
# real model files they need (idempotent: a second run reuses all three).
VENV ?= .venv
PY := $(VENV)/bin/python
ASSETS_DIR ?= .assets
export ASSETS_DIR

.PHONY: install assets demo test lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel. An unpinned torch resolves to a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The test assets (every model and data set the tests use), in $(ASSETS_DIR).
assets:
	bash scripts/fetch_assets.sh "$(ASSETS_DIR)"

# The default models go to their home ($$TINYFORMERS_HOME, default ~/.cache/tinyformers), so that the commands
# work from any directory afterwards. Then the walkthrough on a real BERT, one scripted question to SmolLM2, and
# an interactive chat (Ctrl-D ends it).
demo: install
	$(VENV)/bin/tinyformers setup
	$(PY) examples/walkthrough.py
	@echo; echo '>>> tinyformers chat --prompt "What is the capital of France?"'
	$(VENV)/bin/tinyformers chat --prompt "What is the capital of France?"
	@echo; echo ">>> tinyformers chat   (your turn; /quit or Ctrl-D to leave)"
	$(VENV)/bin/tinyformers chat

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks examples
	$(VENV)/bin/ruff format src tests benchmarks examples

# Three pytest-xdist workers on two cores, each taking whole files (module fixtures load once) with one thread:
# while one waits on a server or CLI process starting, a retry's backoff or a subprocess, the other two keep
# both cores busy (benchmarks/README.md has the suite's times with two and three).
# The package's bytecode is compiled first: the tests start a few hundred CLI and server processes, and where
# PYTHONDONTWRITEBYTECODE is set each would otherwise compile every module it imports again.
test: install assets lint
	$(PY) -m compileall -q src
	$(PY) -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder

bench: install assets
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
