#!/usr/bin/env bash
# Print a DATABASE_URL for a PostgreSQL on 127.0.0.1:5432, starting the local
# cluster if it is installed but stopped. Prints nothing when there is none.
set -u
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if command -v pg_isready >/dev/null 2>&1; then
  if ! ready && command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
    for _ in $(seq 20); do ready && break; sleep 0.5; done
  fi
  ready && echo "postgres://postgres@127.0.0.1:5432/postgres"
fi
exit 0
