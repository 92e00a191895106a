# Two commands on a fresh machine: `make demo` and `make test` (each builds .venv first when needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test test-all bench lint docs docs-serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,gui,dask,data,docs]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/recon demo --out demo_out --overwrite

# GUI tests run under Xvfb when it is installed (Debian: apt-get install xvfb) and are skipped otherwise.
# Two workers, one thread each; the tests marked slow (long end-to-end runs, each covered in part by a faster
# test) run in `make test-all`.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -m "not slow"

test-all: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python scripts/bench_operators.py

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/python scripts/docs_site.py
	$(BIN)/mkdocs build --strict

docs-serve: docs
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) demo_out bench_results build/site .pytest_cache
