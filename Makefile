# Two commands for users: `make demo` and `make test`. Both create .venv (python3 -m venv)
# when missing and install the exact versions in requirements.lock, then sdegen itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sdegen-installed

.PHONY: demo test test-slow lint bench clean reproduce-small docs wheel-check

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sdegen train toy2d/demo
	$(BIN)/sdegen sample runs/demo
	$(BIN)/sdegen evaluate runs/demo

lint: $(STAMP)
	$(BIN)/ruff check sdegen tests experiments benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

# Build the wheel, install it into a fresh venv outside the checkout (deps from the lock) and use
# it as a user would: the README's library example, --version, train a shipped config by name.
wheel-check:
	PYTHON=$(PYTHON) bash .ci/wheel_check.sh

test-slow: $(STAMP)
	tests/reliability/run_slow.sh

# Every experiment in its --small setting, each in a fresh process; a summary table at the end,
# exit 1 if any fails. `sdegen reproduce --index --results results/ci` then rebuilds the index.
reproduce-small: $(STAMP)
	$(BIN)/sdegen reproduce --all --small --out results/ci

# The docs (docs/*.md + an API reference from the docstrings), built offline; warnings fail.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) docs/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r docs/requirements.txt
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/toy_sampling.py

clean:
	rm -rf $(VENV) runs results .pytest_cache .cache
