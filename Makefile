# The two commands: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test bench deps test-deps node-deps services browser contracts lint clean simulate soak

$(VENV)/.stamp-deps: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-test-deps: $(VENV)/.stamp-deps
	$(PIP) install -q -e '.[test]'
	touch $@

node_modules/.stamp: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.stamp-deps node-deps
test-deps: $(VENV)/.stamp-test-deps node-deps services browser
node-deps: node_modules/.stamp

# PostgreSQL and NATS are the machine's own services; start them if they stopped.
services:
	@bash .ci/services

# Debian's Chromium for the Mini App browser test (Playwright's own download cannot work here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Recompile the demo ERC-20 (offline solc-js); the artifact is committed, so run/test never need it.
contracts: node-deps
	node teller/chain/contracts/build.js

run: deps
	$(PY) main.py --dev

test: test-deps
	$(PY) -m pytest -q

bench: test-deps
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	@# Every bench runs; a MISS (nonzero exit) is reported at the end, not a reason to skip the rest.
	@failed=""; for f in bench/*.py; do echo "== $$f"; $(PY) $$f || failed="$$failed $$f"; done; \
	  if [ -n "$$failed" ]; then echo "benches with a MISS or an error:$$failed"; exit 1; fi

# The money-path simulator (tests/simulation): a budget of seeds from SEED_START plus the mutation check;
# SEED=n runs that one seed (what a failure prints); `make soak MINUTES=n` runs seeds for n minutes.
SEED_START ?= 1
SEEDS ?= 16
STEPS ?= 60
MINUTES ?= 10
simulate: test-deps
ifdef SEED
	$(PY) -m tests.simulation.run --seed $(SEED) --steps $(STEPS) --verbose
else
	$(PY) -m tests.simulation.run --start $(SEED_START) --seeds $(SEEDS) --steps $(STEPS)
	$(PY) -m tests.simulation.run --mutations --start $(SEED_START) --steps $(STEPS)
endif

soak: test-deps
	$(PY) -m tests.simulation.run --start $(SEED_START) --minutes $(MINUTES) --steps $(STEPS)

lint: test-deps
	$(VENV)/bin/ruff check --select F,E9 teller tests bench

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .hypothesis test-artifacts
