# Two entry points: `make run` and `make test`. Both work on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-any-hour demo install install-dev locales lint pytest bench messages clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Compile gettext catalogues (locales/<lang>/LC_MESSAGES/messages.po -> .mo).
locales: $(VENV)/.installed
	@$(BIN)/pybabel compile -d locales -D messages 2>&1 | grep -v '^compiling catalog' || true
	@test -f locales/ru/LC_MESSAGES/messages.mo

# Re-extract translatable strings and merge them into the catalogues (for developers).
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -k _ -k __ -k ngettext:1,2 -k lazy_gettext -o locales/messages.pot \
	    --no-location --sort-output --project school-diary-bot bot core
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete

run: locales
	$(BIN)/diary run

# The demo school in its own database (data/demo.sqlite3), in demo mode.
demo: locales
	$(BIN)/diary demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

pytest: $(VENV)/.installed-dev locales
	$(BIN)/python -m pytest -q

test: lint pytest

# The whole suite at faked wall-clock hours (needs libfaketime: apt-get install faketime).
test-any-hour: $(VENV)/.installed-dev locales
	.ci/any-hour

bench: $(VENV)/.installed-dev locales
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find locales -name '*.mo' -delete
