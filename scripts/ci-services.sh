#!/usr/bin/env bash
# Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, trust auth for local TCP, database `test`) for the
# distributed test suites: each is left alone when it already answers, else installed (Debian, as root) and started.
# Fails loudly when either cannot be had: CI must not turn the distributed suite into a silent skip.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; }

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # appendonly: queued jobs survive a Redis restart (README, "Running on many machines").
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --appendonly yes --dir "${TMPDIR:-/tmp}"
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
fi
redis_up || { echo "ci-services: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  hba="/etc/postgresql/${version}/main/pg_hba.conf"
  # Trust for local TCP connections: the test database holds nothing but throw-away test schemas.
  if [ -w "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  pg_ctlcluster "$version" main start || pg_ctlcluster "$version" main reload || true
  for _ in $(seq 100); do psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null
fi
pg_up || { echo "ci-services: PostgreSQL does not answer on 127.0.0.1:5432 (user postgres, database test)" >&2; exit 1; }
echo "ci-services: Redis and PostgreSQL answer on 127.0.0.1"
