#!/usr/bin/env bash
# GET /api/v2/logs searches over 1,000,000 tenant log events on PostgreSQL, through the idp's
# real HTTP API: p50 and p95 of sequential requests for `q=user_id:"…"`, `q=type:fp` and the
# fields migration 10 indexes (client, address, connection). Target: p50 < 20 ms.
#
# 1. A fresh PostgreSQL database (created here, dropped at exit; nothing else is touched).
# 2. `gatehouse idp` on it creates the schema; the events are then seeded by PostgreSQL itself
#    in one multi-row INSERT … SELECT per 100,000 rows (generate_series), in the idp's shapes:
#    log ids as the recorder makes them, dated over the last 10 days (inside the retention),
#    40% `s`, 30% `seccft`, 5% `fp`, the rest other codes; 20,000 users, 1,000 addresses,
#    50 applications, 4 connections. Then ANALYZE, as autovacuum would have.
# 3. Each search runs REQUESTS times one after another with curl (keep-alive off: each timing
#    is a whole request), after WARMUP requests; the idp is already up and warm.
#
# Usage: bench/logs-search.sh target/release/gatehouse
# Settings (environment): EVENTS=1000000 REQUESTS=200 WARMUP=20 PORT=3913
# PG_URL=postgres://postgres@127.0.0.1:5432/test RESULTS=bench/results/logs-search-<date>.md
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEHOUSE=${1:?usage: bench/logs-search.sh PATH/TO/gatehouse}
EVENTS=${EVENTS:-1000000}
REQUESTS=${REQUESTS:-200}
WARMUP=${WARMUP:-20}
PORT=${PORT:-3913}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
RESULTS=${RESULTS:-$ROOT/bench/results/logs-search-$(date -u +%F).md}
TENANT=$ROOT/examples/cms-tenant

log() { echo "[logs-search] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
for tool in psql curl jq; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ -x $GATEHOUSE ]] || die "$GATEHOUSE is not an executable"
[[ $PG_URL =~ ^postgres(ql)?://[^/]*@?(127\.0\.0\.1|localhost)(:[0-9]+)?/ ]] || die "PG_URL must point at 127.0.0.1"
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then die "port $PORT is taken"; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-logs-search.XXXXXX")
PG_DB="gatehouse_logs_search_$$"
PG_BENCH_URL="${PG_URL%/*}/$PG_DB"
PG_CREATED=0
cleanup() {
  local pid
  # This shell's background jobs only: nothing it did not start.
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((PG_CREATED)); then
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || log "could not drop $PG_DB"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

env_value() { sed -n "s/^$1=//p" "$TENANT/dev.env" | tr -d "'\""; }
MGMT_ID=$(env_value MGMT_CLIENT_ID)
MGMT_SECRET=$(env_value MGMT_CLIENT_SECRET)

log "PostgreSQL: creating database $PG_DB"
psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
PG_CREATED=1

GATEHOUSE_MANAGEMENT_RATE_LIMIT=1000000 "$GATEHOUSE" idp --tenant "$TENANT/tenant.yaml" \
  --keywords "$TENANT/dev.env" --database "$PG_BENCH_URL" --data "$TMP/data" \
  --listen "127.0.0.1:$PORT" >"$TMP/idp.log" 2>&1 &
IDP=$!
deadline=$((SECONDS + 120))
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do
  kill -0 "$IDP" 2>/dev/null || die "the idp exited: $(tail -n 5 "$TMP/idp.log")"
  ((SECONDS < deadline)) || die "the idp is not ready after 2 min"
  sleep 0.5
done
migrations=$(psql -At "$PG_BENCH_URL" -c "SELECT max(version) FROM schema_migrations")
log "schema at migration $migrations; seeding $EVENTS events"

now_ms=$(($(date +%s%N) / 1000000))
t0=$(date +%s.%N)
for ((start = 0; start < EVENTS; start += 100000)); do
  end=$((start + 100000 < EVENTS ? start + 100000 : EVENTS))
  psql -q -v ON_ERROR_STOP=1 "$PG_BENCH_URL" >/dev/null <<SQL || die "seeding failed"
INSERT INTO log_events (log_id, date, event_type, description, client_id, client_name, ip, user_agent,
  user_id, user_name, connection, connection_id, strategy, strategy_type, audience, scope, hostname, details)
SELECT '900' || lpad(d::text, 20, '0') || lpad(i::text, 17, '0') || '4242424242424242', d,
  t, 'seeded event', 'client' || lpad((i % 50)::text, 28, '0'), 'Application ' || (i % 50),
  '10.' || (i % 1000 / 250) || '.' || (i % 250) || '.7', 'bench/1.0',
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'auth0|' || lpad((i::bigint * 7919 % 20000)::text, 24, '0') END,
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'user' || (i::bigint * 7919 % 20000) || '@bench.example' END,
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'db-' || (i % 4) END,
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'con_' || (i % 4) END,
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'auth0' END,
  CASE WHEN t IN ('seccft', 'sapi') THEN NULL ELSE 'database' END,
  'https://api.bench.example/', 'openid profile', '127.0.0.1', NULL
FROM (
  SELECT i, $now_ms - 864000000 + (i::bigint * 864000000 / $EVENTS) AS d,
    (ARRAY['s','s','s','s','s','s','s','s','seccft','seccft','seccft','seccft','seccft','seccft',
           'fp','fu','sapi','seacft','slo','f'])[i % 20 + 1] AS t
  FROM generate_series($start, $((end - 1))) AS i
) AS g;
SQL
done
psql -q "$PG_BENCH_URL" -c "ANALYZE log_events" >/dev/null
SEED_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
count=$(psql -At "$PG_BENCH_URL" -c "SELECT count(*) FROM log_events")
log "$count events seeded in $SEED_SECS s"
[[ $count -ge $EVENTS ]] || die "only $count events in the log"

# The example tenant grants its M2M application user scopes only: add read:logs in the bench's
# own database (the idp's cache forgets the grant within a second).
psql -q -v ON_ERROR_STOP=1 "$PG_BENCH_URL" -c "UPDATE client_grants SET data = jsonb_set(data::jsonb, '{scope}',
  (data::jsonb -> 'scope') || '[\"read:logs\"]')::text WHERE client_id = '$MGMT_ID'" >/dev/null || die "no grant to widen"
sleep 1.5
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/oauth/token" -d grant_type=client_credentials -d "client_id=$MGMT_ID" \
  --data-urlencode "client_secret=$MGMT_SECRET" --data-urlencode "audience=https://localhost:$PORT/api/v2/" |
  jq -r .access_token)
[[ -n $TOKEN && $TOKEN != null ]] || die "no Management API token"

urlencode() { jq -rn --arg v "$1" '$v | @uri'; }
# measure QUERY: prints "p50 p95 hits" in ms over REQUESTS sequential requests.
measure() {
  local url i hits
  url="http://127.0.0.1:$PORT/api/v2/logs?q=$(urlencode "$1")&per_page=50"
  hits=$(curl -sf -H "authorization: Bearer $TOKEN" "$url" | jq length) || die "$1: the search failed"
  for ((i = 0; i < WARMUP; i++)); do curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" "$url"; done
  for ((i = 0; i < REQUESTS; i++)); do
    curl -sf -o /dev/null -w '%{time_total}\n' -H "authorization: Bearer $TOKEN" "$url"
  done | sort -n | awk -v n="$REQUESTS" -v hits="$hits" '
    { t[NR] = $1 * 1000 }
    END { printf "%.1f %.1f %d", t[int(n * 0.5) + 1], t[int(n * 0.95) + 1], hits }'
}

declare -a ROWS
for q in 'user_id:"auth0|000000000000000000012345"' 'type:fp' 'type:fp AND user_id:"auth0|000000000000000000012345"' \
  'client_id:"client0000000000000000000000000017"' 'ip:"10.2.33.7"' 'connection:"db-3"' \
  'type:s AND date:[2000-01-01 TO *]'; do
  read -r p50 p95 hits <<<"$(measure "$q")"
  log "$q: p50 $p50 ms, p95 $p95 ms ($hits events on the page)"
  ROWS+=("| \`q=${q//|/\\|}\` | $hits | $p50 | $p95 |")
done

mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Tenant log search over $count events on PostgreSQL ($(date -u +%F))"
  echo
  echo "\`bench/logs-search.sh\`: one \`gatehouse idp\` (release) on a fresh PostgreSQL database at migration"
  echo "$migrations, $count events seeded by INSERT … SELECT in $SEED_SECS s, then ANALYZE. Each row:"
  echo "$REQUESTS sequential \`GET /api/v2/logs?q=…&per_page=50\` (newest first) through the HTTP API with"
  echo "curl after $WARMUP warm-up requests, times of whole requests. Target: p50 < 20 ms."
  echo
  echo "| search | events on the page | p50 ms | p95 ms |"
  echo "| --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), shared;"
  echo "$(psql -At "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1) PostgreSQL."
} >"$RESULTS"
log "results in $RESULTS"
