# spinemets: `make run` and `make test` work on a fresh machine (they create .venv on first use).
#   make run [HOST=127.0.0.1] [PORT=8000] [WORKERS=1]   check the knowledge base and the port, then serve the web app
#   make test-fast                          the development subset (not slow, browser or pg; docs/testing.md)
#   make shell                              a shell with .venv activated (`spinemets` on PATH); `exit` leaves it
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test test-fast bench kb-check shell clean

# `make run` installs spinemets alone (no torch, no transformers: docs/benchmarks.md has the size); `make test`
# adds the development extra (test tools, and torch for the second sentence-encoder backend).
RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

# Is HOST:PORT free?  Checked before `serve` prints "serving ...", with the same check `spinemets serve` makes
# (spinemets.api.commands.port_problem), so a busy port is the first thing said, with the make variable to change.
define PORT_CHECK
import sys
from spinemets.api.commands import port_problem
host, port = sys.argv[1], sys.argv[2]
if not port.isdigit() or not 0 < int(port) < 65536:
    sys.exit(f"make run: PORT={port!r} is not a port number (1-65535)")
problem = port_problem(host, int(port))
if problem:
    sys.exit(f"make run: cannot serve on {host}:{port}: {problem}; "
             f"is spinemets already running there? Choose another port: make run PORT={int(port) + 1}")
endef
export PORT_CHECK

run: $(RUN_STAMP)
	@$(BIN)/python -c "$$PORT_CHECK" '$(HOST)' '$(PORT)'
	$(BIN)/spinemets kb check
	$(BIN)/spinemets serve --host '$(HOST)' --port '$(PORT)' --workers '$(WORKERS)'

test: $(STAMP)
	./scripts/system-deps.sh
	$(BIN)/spinemets kb check
	$(BIN)/python -m pytest -q -n 2

# The development subset (docs/testing.md): no server subprocess, evaluation set, schemathesis, browser or
# PostgreSQL. `make test` (what .ci/run calls) still runs everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not browser and not pg"

bench: $(STAMP)
	$(BIN)/python bench/run.py

kb-check: $(RUN_STAMP)
	$(BIN)/spinemets kb check

# The same as `. .venv/bin/activate` in your own shell.
shell: $(STAMP)
	@echo "make shell: .venv is active (spinemets on PATH); type exit to leave" >&2
	@VIRTUAL_ENV='$(abspath $(VENV))' PATH='$(abspath $(BIN))':"$$PATH" exec "$${SHELL:-/bin/sh}"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
