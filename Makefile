# The two commands of the README: `make serve` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint check-tests browser soak bench clean

$(VENV)/.serve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.serve
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: $(VENV)/.serve
	$(BIN)/pairline serve

lint: $(VENV)/.test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

# Servers under test are subprocesses that mostly wait: four workers keep two cores busy.
# The churn runs (one node; three nodes on Redis, with and without one killed) load both cores
# by themselves, so they follow, one at a time.
check-tests: $(VENV)/.test browser
	$(BIN)/python -m pytest -n 4 --dist loadfile -m "not heavy and not soak"
	$(BIN)/python -m pytest -m "heavy or soak"

# The browser tests drive Debian's chromium (never a downloaded build): install it where missing.
browser:
	command -v chromium >/dev/null || ( \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium )

# Only the three-node churn runs (about three minutes).
soak: $(VENV)/.test
	$(BIN)/python -m pytest -m soak -v

test: lint check-tests

bench: $(VENV)/.test
	$(BIN)/python bench/matchmaking.py --users 1000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
