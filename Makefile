# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help demo test install bench bench-revision lock clean policy-schema

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv from the lock file

demo: $(STAMP)  ## generate a synthetic breach in ./demo and run the whole pipeline on it
	$(BIN)/redress demo --out demo

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest --durations=15

bench: $(STAMP)  ## benchmark against the SQL reference: make bench CUSTOMERS=1000000
	$(BIN)/python benchmarks/run_benchmark.py --customers $(or $(CUSTOMERS),1000000)

bench-revision: $(STAMP)  ## the same, then a 1% scope revision: make bench-revision CUSTOMERS=1000000
	$(BIN)/python benchmarks/run_benchmark.py --customers $(or $(CUSTOMERS),1000000) --revision

policy-schema: $(STAMP)  ## rewrite policies/policy.schema.json from the policy models (redress/policy)
	$(BIN)/python -m redress.policy --schema > policies/policy.schema.json

lock:  ## re-resolve requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock

clean:  ## remove the environment and generated folders
	rm -rf $(VENV) demo bench
