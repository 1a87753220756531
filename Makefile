# Two commands a user needs: `make demo` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel these machines provide; a looser pin would pull GBs of CUDA packages
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,pyserini,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m llmrank.demo

test: $(STAMP)
	$(BIN)/ruff check llmrank tests bench eval
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check llmrank tests bench eval

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
