# Two entry points: `make run` and `make test`. Both work on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: lock run test test-any-hour demo install install-dev locales lint pytest bench messages clean

# Every dependency, direct and transitive, comes from a lock with exact versions and hashes
# (requirements.lock for running, requirements-dev.lock adds the test tools); the project itself
# goes in after them with --no-deps, built without fetching anything (setuptools is locked too).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
PIP      := $(BIN)/python -m pip --quiet --disable-pip-version-check
# The lock is made by uv (pinned in the dev lock): one universal lock for every Python >= 3.11
# and platform, with the hashes of every file of each pinned release.
UV_COMPILE = $(BIN)/uv --quiet pip compile --universal --python-version 3.11 --generate-hashes \
	--annotation-style line $(if $(filter :all:,$(UPGRADE)),--upgrade,\
	$(foreach p,$(UPGRADE),--upgrade-package $(p)))

$(VENV)/.installed: $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --clear $(VENV)
	$(PIP) install --require-hashes --only-binary :all: -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed $(DEV_LOCK)
	$(PIP) install --require-hashes --only-binary :all: -r $(DEV_LOCK)
	@touch $@

# Regenerate both locks from pyproject.toml, keeping every pin that still fits; upgrade one
# dependency with `make lock UPGRADE=babel` (several: UPGRADE="babel redis"), or all with
# `make lock UPGRADE=:all:`. Then run the suite on both backends and commit pyproject.toml and
# the two locks together.
# uv comes from the dev environment; without one (or with a lock that cannot be installed) the
# version the dev lock names is installed alone.
UV_PIN = $(shell sed -n 's/^\(uv==[^ ;]*\).*/\1/p' $(DEV_LOCK) 2>/dev/null | head -n 1)

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv --clear $(VENV)
	test -x $(BIN)/uv || $(PIP) install "$(or $(UV_PIN),uv)"
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))\
	    ['build-system']['requires'], sep='\n')" > .lock-build.in
	$(UV_COMPILE) pyproject.toml .lock-build.in --extra dev -o $(DEV_LOCK)
	$(UV_COMPILE) pyproject.toml .lock-build.in -c $(DEV_LOCK) -o $(LOCK)
	rm -f .lock-build.in

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

# ruff, then the type gate (mypy, configured in pyproject.toml).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev locales
	$(BIN)/python -m pytest -q

test: lint pytest

# The whole suite at faked wall-clock hours (needs libfaketime: apt-get install faketime).
test-any-hour: $(VENV)/.installed-dev locales
	.ci/any-hour

bench: $(VENV)/.installed-dev locales
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
	find locales -name '*.mo' -delete
