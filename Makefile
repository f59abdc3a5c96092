# The two Quick start commands: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: demo test lint bench
.venv/.installed: requirements.txt scripts/venv.sh
	bash scripts/venv.sh

demo: .venv/.installed
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo_setup
	@echo "Open http://127.0.0.1:8000/ and sign in."
	$(PY) manage.py runserver 127.0.0.1:8000

test: .venv/.installed
	bash scripts/test-deps.sh
	$(PY) -m ruff check .
	$(PY) -m pytest
	@url=$$(bash scripts/postgres-url.sh); \
	if [ -n "$$url" ]; then echo "== the suite again on PostgreSQL ($$url)"; DATABASE_URL=$$url $(PY) -m pytest; \
	else echo "== PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run"; fi

lint: .venv/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
