# The two Quick start commands: `make demo` and `make test`.
PY := .venv/bin/python
PORT ?= 8000

.PHONY: demo test test-django52 lint
.venv/.installed: requirements.txt scripts/venv.sh
	bash scripts/venv.sh

# ESLint for `make lint`; the widget's JavaScript tests need Node alone (node --test).
node_modules/.installed: package.json package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/test-deps.sh
	npm ci --no-audit --no-fund
	touch $@

.venv-django52/.installed: requirements.txt scripts/venv.sh
	VENV=.venv-django52 DJANGO="Django~=5.2.0" bash scripts/venv.sh

demo: .venv/.installed
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo_setup
	@echo "Open http://127.0.0.1:$(PORT)/ and sign in."
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: .venv/.installed node_modules/.installed
	bash scripts/test-deps.sh
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	npx eslint
	node --test tests/js/*.test.mjs
	$(PY) -m pytest
	@url=$$(bash scripts/postgres-url.sh); \
	if [ -n "$$url" ]; then echo "== the suite again on PostgreSQL ($$url)"; DATABASE_URL=$$url $(PY) -m pytest; \
	else echo "== PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run"; fi
	$(MAKE) --no-print-directory test-django52

# The 5.2 LTS: everything but the browser tests, whose JavaScript does not depend on Django.
test-django52: .venv-django52/.installed
	@echo "== the suite again on Django 5.2 LTS"
	.venv-django52/bin/python -m pytest --ignore=tests/test_browser.py --ignore=tests/test_browser_demos.py

lint: .venv/.installed node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	npx eslint
