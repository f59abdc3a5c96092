#!/usr/bin/env bash
# The suite's three runs for `make test`: SQLite (everything) in the foreground, and beside it,
# one after the other, PostgreSQL (when one answers on 127.0.0.1:5432) and the Django 5.2 LTS.
#
# Most tests wait on sockets, subprocesses and a browser, so one run keeps about one core busy:
# two side by side take little longer than the longest. Each run has its own test database
# (named after its pid), its own private redis-server and free ports, so they share nothing.
# The background runs' output is printed whole when they end; the exit status is the first failure's.
set -u
cd "$(dirname "$0")/.."

# What the later runs leave out: the docs tests unset DATABASE_URL and install the newest Django
# in their scratch project (a second run repeats the first), and the widget's browser tests
# drive the same views and SQL that the other tests already run on each database and Django.
ENGINE_FREE=(--ignore-glob='tests/test_browser*.py' --ignore=tests/test_docs.py)
LOGS=test-artifacts/runs
mkdir -p "$LOGS"

others() {
  local url status=0
  url=$(bash scripts/postgres-url.sh)
  if [ -n "$url" ]; then
    echo "== the suite again on PostgreSQL ($url)"
    DATABASE_URL=$url .venv/bin/python -m pytest "${ENGINE_FREE[@]}" --ignore=tests/test_admin_browser.py || status=$?
  else
    echo "== PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run"
  fi
  # The 5.2 LTS: everything that depends on Django's version. Not the benchmarks and the Redis
  # topologies (the same code paths as test_processes); the admin's browser tests stay (they
  # caught 5.2 bugs).
  echo "== the suite again on Django 5.2 LTS"
  .venv-django52/bin/python -m pytest "${ENGINE_FREE[@]}" --ignore=tests/test_bench.py --ignore=tests/test_fleet.py || status=$?
  return "$status"
}

others >"$LOGS/others.log" 2>&1 &
background=$!

echo "== the suite on SQLite (PostgreSQL and Django 5.2 run beside it: $LOGS/others.log)"
.venv/bin/python -m pytest
status=$?

wait "$background"
others_status=$?
cat "$LOGS/others.log"
[ "$status" -ne 0 ] && exit "$status"
exit "$others_status"
