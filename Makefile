# The two Quick start commands: `make demo` and `make test`; `make help` lists the others.
PY := .venv/bin/python
PORT ?= 8000

.PHONY: demo test lint help

.venv/.installed: requirements.txt scripts/venv.sh
	bash scripts/venv.sh

# ESLint for `make lint`; the widget's JavaScript tests need Node alone (node --test).
node_modules/.installed: package.json package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/test-deps.sh
	npm ci --no-audit --no-fund
	touch $@

.venv-django52/.installed: requirements.txt scripts/venv.sh
	VENV=.venv-django52 DJANGO="Django~=5.2.0" bash scripts/venv.sh

## demo: install, migrate, create the demo logins and serve the demo site on 127.0.0.1 (PORT=8000)
demo: .venv/.installed
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo_setup
	@echo "Open http://127.0.0.1:$(PORT)/ and sign in."
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

## test: lint, then the whole suite on SQLite, and beside it on PostgreSQL (when reachable) and Django 5.2
test: lint .venv-django52/.installed
	bash scripts/test-deps.sh
	node --test tests/js/*.test.mjs
	bash scripts/suites.sh

## lint: everything `make test` lints: ruff, ruff format, mypy (livefeed, tests, bench), ESLint
lint: .venv/.installed node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	npx eslint

## help: list these targets
help:
	@sed -n 's/^## \([a-z0-9-]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | expand -t 16
