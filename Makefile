# Two commands on a fresh machine: `make run` and `make test`. Everything installs from this repo's files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

SOKETI := tests/soketi/node_modules/.bin/soketi
# root installs apt packages directly; anyone else through sudo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test-deps system-deps run run-headless test lint typecheck pytest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/mt5console --broker sim --strategies examples/strategies

run-headless: setup
	$(BIN)/mt5console --no-ui --broker sim --strategies examples/strategies

lint: setup
	$(BIN)/ruff check mt5console tests benchmarks
	$(BIN)/ruff format --check mt5console tests benchmarks

typecheck: setup
	$(BIN)/mypy

# What the tests need beyond Python: tmux (the end-to-end console test), openssl (the TLS test's
# certificate), Node.js and npm (soketi, the real Pusher-protocol server). Installed from Debian's
# packages only when missing.
system-deps:
	@missing=""; \
	for tool in tmux openssl node npm; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq tmux openssl $$(command -v node >/dev/null || echo nodejs) \
			$$(command -v npm >/dev/null || echo npm); \
	fi

$(SOKETI): tests/soketi/package.json tests/soketi/package-lock.json | system-deps
	npm install --prefix tests/soketi --no-audit --no-fund --loglevel=error
	touch $@

test-deps: setup system-deps $(SOKETI)

pytest: test-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
