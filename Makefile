# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help demo test test-seconds check-install install system-deps bench bench-revision lock clean distclean policy-schema

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# pip compiles what it installs one file at a time; compileall does the same on every
# core (70 s against 44 + 16 s for the lock on two cores). Like pip, it goes on past a
# file this Python cannot compile (a package's module for a later Python), so its status
# is not checked. The libraries must be compiled here: a machine that sets
# PYTHONDONTWRITEBYTECODE would otherwise compile them again in every process.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -c 'import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2, workers=0)'
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv from the lock file

demo: $(STAMP)  ## generate a synthetic breach in ./demo and run the whole pipeline on it (again: replaces ./demo)
	$(BIN)/redress demo --out demo

# The tests look at the pages and spreadsheets as people do: in Chromium and LibreOffice
# (Debian's packages). Installed when missing and allowed (root, or sudo without a
# password), else a one-line reason.
SYSTEM_DEPS := chromium libreoffice-calc-nogui
system-deps:  ## install Debian's chromium and libreoffice-calc-nogui when missing (the tests use them)
	@if command -v chromium > /dev/null && command -v soffice > /dev/null; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" != 0 ]; then \
	  if sudo -n true 2> /dev/null; then sudo="sudo -n"; \
	  else echo "make test needs Chromium and LibreOffice Calc: sudo apt-get install $(SYSTEM_DEPS)" >&2; exit 1; fi; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_DEPS) > /dev/null

# The tests start `redress` in many processes (forked or new), each importing redress's
# own modules: compiled once here, they are not compiled again in each process on a
# machine that sets PYTHONDONTWRITEBYTECODE (0.37 s against 0.27 s of CPU a process).
# In tests/ only the helpers gain: pytest rewrites the test modules themselves. A module
# edited later is compiled again from its source, as Python does with any stale file.
BYTECODE = $(BIN)/python -m compileall -q -j 0 redress flows tasks tests benchmarks

# Two pytest processes: the service tier's session server (a real `prefect server start`)
# and the other tiers' test server must never share a process, or the tests of one tier
# run against the other's server once both session fixtures are up. The service tier
# mostly waits on its server, so it runs beside the rest; its output follows theirs.
test: $(STAMP) system-deps  ## check the layers (.importlinter), then run the test suite on two workers, a module per worker (its fixtures built once)
	$(BIN)/lint-imports
	$(BYTECODE)
	@log=$$(mktemp); \
	$(BIN)/python -m pytest --durations=5 tests/service > "$$log" 2>&1 & service=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=15 --ignore=tests/service; rest=$$?; \
	wait $$service; served=$$?; echo "--- tests/service:"; cat "$$log"; rm -f "$$log"; \
	test $$rest -eq 0 && test $$served -eq 0

test-seconds: $(STAMP) system-deps  ## measure each test module's seconds again, into tests/module_seconds.json (the order `make test` hands modules to its workers: longest first)
	REDRESS_MEASURE_MODULE_SECONDS=1 $(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder --ignore=tests/service

# A fresh venv with redress installed as a wheel (no -e), and the demo run from a folder
# outside the repository: the suites and policies must come with the package. The locked
# libraries are .venv's (built from the lock by `make install`), seen through a .pth line:
# Python does not read the .pth files of a folder a .pth line adds, so .venv's editable
# redress is not seen, only the wheel's. Installing the lock a second time took a minute.
check-install: $(STAMP)  ## install redress non-editable into a temporary venv and run its demo there
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv --without-pip "$$tmp/venv"; \
	purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'; \
	site=$$("$$tmp/venv/bin/python" -c "$$purelib"); \
	$(BIN)/python -c "$$purelib" > "$$site/locked-libraries.pth"; \
	$(BIN)/pip --python "$$tmp/venv/bin/python" install --quiet --no-compile --no-deps --ignore-installed .; \
	cd "$$tmp" && "$$tmp/venv/bin/redress" demo --out "$$tmp/demo" --customers 2000 > "$$tmp/demo.log" 2>&1 \
	  || { cat "$$tmp/demo.log"; exit 1; }; \
	"$$tmp/venv/bin/python" -c 'import redress, sys; sys.exit(0 if redress.__file__.startswith(sys.argv[1]) else f"redress imported from {redress.__file__}, not the wheel")' "$$site"; \
	ls "$$tmp"/demo/reports/*/summary.md > /dev/null; \
	echo "check-install: the installed redress ran the demo from $$tmp"

bench: $(STAMP)  ## benchmark against the SQL reference: make bench CUSTOMERS=1000000
	$(BIN)/python benchmarks/run_benchmark.py --customers $(or $(CUSTOMERS),1000000)

bench-revision: $(STAMP)  ## the same, then a 1% scope revision: make bench-revision CUSTOMERS=1000000
	$(BIN)/python benchmarks/run_benchmark.py --customers $(or $(CUSTOMERS),1000000) --revision

policy-schema: $(STAMP)  ## rewrite policies/policy.schema.json from the policy models (redress/policy)
	$(BIN)/python -m redress.policy --schema > policies/policy.schema.json.tmp  # a failure leaves the file as it was
	mv policies/policy.schema.json.tmp policies/policy.schema.json

lock:  ## re-resolve requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock

# The environment takes a minute to build and is not an output: `clean` keeps it.
clean:  ## remove the generated folders (demo, bench); keeps .venv
	rm -rf demo bench

distclean: clean  ## clean, and remove the environment (.venv) too
	rm -rf $(VENV)
