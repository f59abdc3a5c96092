# The two Quick start commands: `make demo` and `make test`; `make help` lists the others.
PY := .venv/bin/python
PORT ?= 8000

.PHONY: demo test test-django52 lint help

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

# What the later runs leave out: the docs tests unset DATABASE_URL and install the newest Django
# in their scratch project (a second run repeats the first), and the widget's browser tests
# drive the same views and SQL that the other tests already run on each database and Django.
ENGINE_FREE := --ignore-glob='tests/test_browser*.py' --ignore=tests/test_docs.py

## test: lint, then the whole suite on SQLite, PostgreSQL (when reachable) and Django 5.2
test: lint
	bash scripts/test-deps.sh
	node --test tests/js/*.test.mjs
	$(PY) -m pytest
	@url=$$(bash scripts/postgres-url.sh); \
	if [ -n "$$url" ]; then echo "== the suite again on PostgreSQL ($$url)"; \
		DATABASE_URL=$$url $(PY) -m pytest $(ENGINE_FREE) --ignore=tests/test_admin_browser.py; \
	else echo "== PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run"; fi
	$(MAKE) --no-print-directory test-django52

# The 5.2 LTS: everything that depends on Django's version. Not the browser tests (the
# JavaScript does not depend on it), the docs tests (their scratch project installs the newest
# Django), the benchmarks and the Redis topologies (the same code paths as test_processes).
## test-django52: the suite on Django 5.2 LTS, in a venv of its own
test-django52: .venv-django52/.installed
	@echo "== the suite again on Django 5.2 LTS"
	.venv-django52/bin/python -m pytest $(ENGINE_FREE) --ignore=tests/test_bench.py --ignore=tests/test_fleet.py

## lint: everything `make test` lints: ruff, ruff format, mypy (livefeed, tests, bench), ESLint
lint: .venv/.installed node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	npx eslint

## help: list these targets
help:
	@sed -n 's/^## \([a-z0-9-]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | expand -t 16
