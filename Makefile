# The two commands of the quick start. Both build their own virtualenv from a fresh clone.
#   make run   - set up, initialise the database, check every page once, then keep watching
#   make test  - set up with the test extras, run lint, types and the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean chromium compile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,browser]'
	touch $(STAMP)

# Sources with fetcher = "browser" render in Debian's chromium-headless-shell (or a full
# chromium when that is what the machine has), driven by Playwright; never a browser downloaded
# at run time. Install the shell when no browser is there and apt-get can; otherwise say so and
# go on: plain HTTP sources do not need it.
chromium:
	@command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 || \
	    command -v chromium-browser >/dev/null 2>&1 || \
	    { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium-headless-shell; } || \
	    echo "note: no chromium installed; browser sources will fail until one is (see README)"

# Byte-compile the package once: with PYTHONDONTWRITEBYTECODE set (as on some CI machines)
# every command would otherwise recompile the modules it imports, each time it starts.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q monitor >/dev/null

run: $(STAMP) chromium compile
	$(BIN)/policy-monitor init
	$(BIN)/policy-monitor check
	$(BIN)/policy-monitor run

lint: $(STAMP)
	$(BIN)/ruff check monitor tests bench alembic
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The deploy tests run `systemd-analyze verify`, the web tests drive Debian's chromium, the
# browser-fetcher tests its chromium-headless-shell, the
# PostgreSQL tests start a throwaway server, and the scale-out tests run one daemon with its
# clock set ahead by libfaketime; a clean Debian machine may lack any of them, so install
# them from Debian (never a downloaded browser or database).
test: lint compile
	@missing=""; command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	    command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	    command -v chromium-headless-shell >/dev/null 2>&1 || missing="$$missing chromium-headless-shell"; \
	    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	    ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$$missing faketime"; \
	    if [ -n "$$missing" ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	$(BIN)/pytest

bench: $(STAMP) compile
	$(BIN)/python bench/check_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-output
