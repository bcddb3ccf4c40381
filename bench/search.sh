#!/usr/bin/env bash
# Management API user search over 100,000 users, on PostgreSQL and on SQLite, and the time to
# import 10,000 users with bcrypt hashes through the users-imports job. See bench/README.md.
#
# 1. Users files (cached under target/bench-search/): the seed in Auth0's import format, and
#    the bcrypt import files (crates/idp/examples/bench_users.rs).
# 2. A fresh PostgreSQL database (created here, dropped at exit) and a fresh SQLite file, each
#    seeded by `gatehouse idp --users`: the idp's own import path, one store write per user,
#    so the rows are exactly those the idp writes; timed from its log.
# 3. Both nodes stay up; `oha` (bounded: CONNECTIONS keep-alive connections for DURATION s)
#    runs GET /api/v2/users?q=...&search_engine=v3&per_page=50 against them in turns, RUNS
#    times. Peers in the same turns: pgbench running the statement the store sends against the
#    same database, the floor PostgreSQL itself sets; and the sqlite3 shell running it in a
#    loop on one connection.
# 4. The import files go through POST /api/v2/jobs/users-imports, one job after another, each
#    polled until completed (with a deadline); then one of the users logs in with its password.
#
# Everything targets 127.0.0.1; the script stops every process it started, drops its database,
# and leaves only the results file.
#
# Settings (environment): USERS=100000 IMPORT_USERS=10000 IMPORT_HASHES=1000 RUNS=3 DURATION=10
# CONNECTIONS=16 WARMUP=2 PG_URL=postgres://postgres@127.0.0.1:5432/test PG_PORT=3911
# SQLITE_PORT=3912 SKIP_BUILD=0 SKIP_IMPORT=0 IMPORT_DEADLINE=900
# RESULTS=bench/results/search-<date>.md
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USERS=${USERS:-100000}
IMPORT_USERS=${IMPORT_USERS:-10000}
IMPORT_HASHES=${IMPORT_HASHES:-1000}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
WARMUP=${WARMUP:-2}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_PORT=${PG_PORT:-3911}
SQLITE_PORT=${SQLITE_PORT:-3912}
SKIP_BUILD=${SKIP_BUILD:-0}
SKIP_IMPORT=${SKIP_IMPORT:-0}
IMPORT_DEADLINE=${IMPORT_DEADLINE:-900}
CACHE=${CACHE:-"$ROOT/target/bench-search"}
RESULTS=${RESULTS:-"$ROOT/bench/results/search-$(date +%F).md"}
QUERY='app_metadata.groups:"admin" AND email:a*'
PER_PAGE=50
TENANT="$ROOT/examples/cms-tenant"

log() { printf '[search.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in curl jq psql pgbench sqlite3 awk; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
[[ -x $OHA ]] || die "oha is required (cargo install oha --locked)"
[[ $PG_URL =~ ^postgres(ql)?://[^/]*@?(127\.0\.0\.1|localhost)(:[0-9]+)?/ ]] || die "PG_URL must point at 127.0.0.1"
for port in "$PG_PORT" "$SQLITE_PORT"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then die "port $port is taken"; fi
done

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-search.XXXXXX")
PG_DB="gatehouse_search_$$"
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

# ---------------------------------------------------------------- build and users files
if ((SKIP_BUILD == 0)); then
  log "cargo build --release -p gatehouse, and the users-file generator"
  (cd "$ROOT" && cargo build --release -p gatehouse && cargo build --release -p idp --example bench_users)
fi
GATEHOUSE="$ROOT/target/release/gatehouse"
GENERATOR="$ROOT/target/release/examples/bench_users"
[[ -x $GATEHOUSE && -x $GENERATOR ]] || die "release binaries missing (run without SKIP_BUILD=1)"
mkdir -p "$CACHE"
SEED="$CACHE/users-$USERS.json"
[[ -s $SEED ]] || "$GENERATOR" search "$USERS" "$SEED"
IMPORT_DIR="$CACHE/import-$IMPORT_USERS-$IMPORT_HASHES"
if ((SKIP_IMPORT == 0)) && [[ ! -s $IMPORT_DIR/passwords.tsv ]]; then
  log "hashing $IMPORT_HASHES bcrypt passwords (cost 10) for the import files, once"
  rm -rf "$IMPORT_DIR"
  "$GENERATOR" import "$IMPORT_USERS" "$IMPORT_HASHES" "$IMPORT_DIR"
fi

env_value() { sed -n "s/^$1=//p" "$TENANT/dev.env" | tr -d "'\""; }
MGMT_ID=$(env_value MGMT_CLIENT_ID)
MGMT_SECRET=$(env_value MGMT_CLIENT_SECRET)
CMS_ID=$(env_value CMS_CLIENT_ID)
CMS_SECRET=$(env_value CMS_CLIENT_SECRET)

# ---------------------------------------------------------------- nodes
declare -A PID_OF PORT_OF SEED_SECS
# launch NAME PORT DATABASE_URL: `gatehouse idp` with the example tenant, seeding the users file
# at start (the idp's own import path).
launch() {
  local name=$1 port=$2 database=$3
  mkdir -p "$TMP/$name"
  GATEHOUSE_MANAGEMENT_RATE_LIMIT=1000000 RUST_LOG=info "$GATEHOUSE" idp \
    --tenant "$TENANT/tenant.yaml" --keywords "$TENANT/dev.env" --database "$database" \
    --data "$TMP/$name" --listen "127.0.0.1:$port" --users "$SEED" --users-connection dev-users \
    >"$TMP/$name.log" 2>&1 &
  PID_OF[$name]=$!
  PORT_OF[$name]=$port
}

# log_field NAME MESSAGE FIELD: FIELD of the first JSON log line of NAME with that message.
log_field() {
  jq -rR --arg m "$2" --arg f "$3" 'fromjson? | select(.fields.message == $m) | if $f == "timestamp" then .timestamp else .fields[$f] end' \
    "$TMP/$1.log" | head -n 1
}

# ready NAME: waits until NAME answers, then records how long its users import took.
ready() {
  local name=$1 deadline=$((SECONDS + 1800)) t0 t1 created
  until curl -sf -o /dev/null "http://127.0.0.1:${PORT_OF[$name]}/readyz"; do
    kill -0 "${PID_OF[$name]}" 2>/dev/null || die "$name exited: $(tail -n 5 "$TMP/$name.log")"
    ((SECONDS < deadline)) || die "$name not ready after 30 min"
    sleep 1
  done
  t0=$(log_field "$name" "tenant imported" timestamp)
  t1=$(log_field "$name" "users imported" timestamp)
  created=$(log_field "$name" "users imported" created)
  [[ $created == "$USERS" ]] || die "$name seeded $created users, not $USERS"
  SEED_SECS[$name]=$(awk -v a="$(date -d "$t0" +%s.%N)" -v b="$(date -d "$t1" +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  log "$name: $USERS users seeded through the idp's import in ${SEED_SECS[$name]} s"
}

token() {
  local port=$1
  curl -sf "http://127.0.0.1:$port/oauth/token" -d grant_type=client_credentials -d "client_id=$MGMT_ID" \
    --data-urlencode "client_secret=$MGMT_SECRET" --data-urlencode "audience=https://localhost:$port/api/v2/" |
    jq -r .access_token
}

urlencode() { jq -rn --arg v "$1" '$v | @uri'; }
SEARCH_PATH="/api/v2/users?q=$(urlencode "$QUERY")&search_engine=v3&per_page=$PER_PAGE"

log "PostgreSQL: creating database $PG_DB"
psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
PG_CREATED=1
# Both seed at once (each import is one write at a time, mostly waiting on its database).
log "seeding $USERS users into each database"
launch pg "$PG_PORT" "$PG_BENCH_URL"
launch sqlite "$SQLITE_PORT" "sqlite://$TMP/sqlite.db"
ready pg
ready sqlite
SQLITE_DB="$TMP/sqlite.db"
# Statistics as autovacuum would have gathered them by now on a long-running database.
psql -q "$PG_BENCH_URL" -c "ANALYZE users" >/dev/null

declare -A TOKEN_OF
for name in pg sqlite; do
  TOKEN_OF[$name]=$(token "${PORT_OF[$name]}")
  [[ -n ${TOKEN_OF[$name]} && ${TOKEN_OF[$name]} != null ]] || die "$name: no Management API token"
done

# Both find as many users (the same file seeded both; user ids are random, so pages differ).
declare -A TOTAL_OF
for name in pg sqlite; do
  body=$(curl -sf -H "authorization: Bearer ${TOKEN_OF[$name]}" \
    "http://127.0.0.1:${PORT_OF[$name]}$SEARCH_PATH&include_totals=true") || die "$name: the search failed"
  TOTAL_OF[$name]=$(jq -r .total <<<"$body")
  jq -r '.users | map(.user_id) | join(",")' <<<"$body" >"$TMP/$name.page"
  log "$name: total ${TOTAL_OF[$name]}, page of $(jq '.users | length' <<<"$body")"
done
[[ ${TOTAL_OF[pg]} == "${TOTAL_OF[sqlite]}" ]] || die "totals differ: ${TOTAL_OF[pg]} vs ${TOTAL_OF[sqlite]}"

# ---------------------------------------------------------------- peers' SQL
# The statement the store sends for this request (crates/store/src/sql/search.rs and
# queries.rs: search_users; without include_totals there is no count), with the bound values
# written in; the count is only run here, to check the hand-written SQL finds what the API does.
pg_where="(users.app_metadata @? CAST('\$.\"groups\" ? (@ == \"admin\")' AS jsonpath)) AND (users.email_lower LIKE 'a%' ESCAPE '\\' AND users.email_lower ~>=~ 'a' AND users.email_lower ~<~ 'b')"
sqlite_where="$(cat <<'SQL'
((instr(users.data, '"admin"') > 0 AND EXISTS (SELECT 1 FROM json_each(users.data, '$."app_metadata"') AS j0, json_each(users.data, CASE WHEN typeof(j0.key) = 'text' THEN j0.fullkey ELSE j0.fullkey || '."groups"' END) AS j1 WHERE ((typeof(j0.key) = 'text' AND j0.key = 'groups') OR (typeof(j0.key) = 'integer' AND j0.type = 'object')) AND typeof(j1.key) <> 'text' AND j1.type NOT IN ('object', 'array', 'null') AND ((j1.type = 'text' AND j1.value = 'admin'))))) AND (users.email_lower GLOB 'a*' AND users.email_lower >= 'a' AND users.email_lower < 'b')
SQL
)"
echo "SELECT data, password_hash FROM users WHERE $pg_where ORDER BY users.user_id COLLATE \"C\" ASC LIMIT $PER_PAGE OFFSET 0;" >"$TMP/peer-pg.sql"
echo "SELECT data, password_hash FROM users WHERE $sqlite_where ORDER BY users.user_id ASC LIMIT $PER_PAGE OFFSET 0;" >"$TMP/peer-sqlite.sql"
expected_total=$((TOTAL_OF[pg] < 1000 ? TOTAL_OF[pg] : 1000))
peer_total=$(psql -At "$PG_BENCH_URL" -c "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE $pg_where LIMIT 1000) AS hits")
[[ $peer_total == "$expected_total" ]] || die "the pgbench SQL counts $peer_total, the API $expected_total"
peer_total=$(sqlite3 "$SQLITE_DB" "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE $sqlite_where LIMIT 1000) AS hits")
[[ $peer_total == "$expected_total" ]] || die "the sqlite3 SQL counts $peer_total, the API $expected_total"
peer_page=$(psql -At "$PG_BENCH_URL" -c "SELECT string_agg(data::jsonb ->> 'user_id', ',' ORDER BY data::jsonb ->> 'user_id' COLLATE \"C\") FROM ($(sed 's/;$//' "$TMP/peer-pg.sql")) AS page")
[[ $peer_page == "$(cat "$TMP/pg.page")" ]] ||
  die "the pgbench SQL finds another first page than the API"
psql -q "$PG_BENCH_URL" -c "EXPLAIN (ANALYZE, BUFFERS) $(cat "$TMP/peer-pg.sql")" >"$TMP/explain-pg.txt"
sqlite3 "$SQLITE_DB" "EXPLAIN QUERY PLAN $(cat "$TMP/peer-sqlite.sql")" >"$TMP/explain-sqlite.txt"

# ---------------------------------------------------------------- load runs
# run_oha NAME SECS [CONNECTIONS] -> "rps p50_ms p99_ms" (only 200 answers count; any other status stops the script)
run_oha() {
  local name=$1 secs=$2 conns=${3:-$CONNECTIONS} out="$TMP/$1.oha.json"
  "$OHA" --no-tui --output-format json -c "$conns" -z "${secs}s" \
    -H "authorization: Bearer ${TOKEN_OF[$name]}" "http://127.0.0.1:${PORT_OF[$name]}$SEARCH_PATH" \
    >"$out" 2>"$out.err" || die "oha failed for $name: $(cat "$out.err")"
  jq -r '
    (.statusCodeDistribution // {}) as $codes
    | if ($codes | keys | map(select(. != "200")) | length) > 0
      then error("non-200 answers: \($codes)") else . end
    | "\((($codes["200"] // 0) / .summary.total) | floor) \(.latencyPercentiles.p50 * 1000 * 100 | round / 100) \(.latencyPercentiles.p99 * 1000 * 100 | round / 100)"
  ' "$out" || die "$name: $(head -c 1000 "$out")"
}

# run_pgbench SECS [CLIENTS] -> "tps p50_ms p99_ms": the store's statement, one per
# transaction, as many clients as the idp's pool has connections (10) at most.
run_pgbench() {
  local secs=$1 clients=${2:-$((CONNECTIONS < 10 ? CONNECTIONS : 10))} dir="$TMP/pgbench" tps
  rm -rf "$dir" && mkdir -p "$dir"
  tps=$(cd "$dir" && pgbench -n -c "$clients" -j 1 -T "$secs" -l --log-prefix=tx -f "$TMP/peer-pg.sql" \
    "$PG_BENCH_URL" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  [[ -n $tps ]] || die "pgbench failed"
  # Log lines: client transaction latency_us script epoch us.
  cat "$dir"/tx* | awk '{ print $3 / 1000 }' | sort -n | awk -v tps="$tps" '
    { a[NR] = $1 } END { printf "%.0f %.2f %.2f\n", tps, a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1] }'
}

# run_sqlite3 -> "per_s mean_ms": the statement 200 times on one connection.
run_sqlite3() {
  local n=200 t0 t1
  for _ in $(seq "$n"); do cat "$TMP/peer-sqlite.sql"; done >"$TMP/peer-sqlite-loop.sql"
  t0=$(date +%s.%N)
  sqlite3 "$SQLITE_DB" <"$TMP/peer-sqlite-loop.sql" >/dev/null
  t1=$(date +%s.%N)
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f %.2f\n", n / (b - a), (b - a) / n * 1000 }'
}

log "warm-up ($WARMUP s each)"
run_oha pg "$WARMUP" >/dev/null
run_oha sqlite "$WARMUP" >/dev/null
declare -a PG_RUNS SQLITE_RUNS PEER_RUNS LITE_PEER_RUNS PG1_RUNS PEER1_RUNS SQLITE1_RUNS
for run in $(seq "$RUNS"); do
  log "run $run/$RUNS: PostgreSQL, pgbench, SQLite, sqlite3 (${DURATION} s each, $CONNECTIONS connections, then 1)"
  PG_RUNS+=("$(run_oha pg "$DURATION")")
  PEER_RUNS+=("$(run_pgbench "$DURATION")")
  SQLITE_RUNS+=("$(run_oha sqlite "$DURATION")")
  LITE_PEER_RUNS+=("$(run_sqlite3)")
  PG1_RUNS+=("$(run_oha pg "$DURATION" 1)")
  PEER1_RUNS+=("$(run_pgbench "$DURATION" 1)")
  SQLITE1_RUNS+=("$(run_oha sqlite "$DURATION" 1)")
  log "  pg ${PG_RUNS[-1]} | pgbench ${PEER_RUNS[-1]} | sqlite ${SQLITE_RUNS[-1]} | sqlite3 ${LITE_PEER_RUNS[-1]}"
  log "  one connection: pg ${PG1_RUNS[-1]} | pgbench ${PEER1_RUNS[-1]} | sqlite ${SQLITE1_RUNS[-1]}"
done

# median_of FIELD RUN... -> the run whose FIELD (1-based) is the median (by requests/s).
median_run() { printf '%s\n' "${@}" | sort -n -k1,1 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }
all_of() { printf '%s\n' "${@}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }'; }
PG_MED=$(median_run "${PG_RUNS[@]}")
SQLITE_MED=$(median_run "${SQLITE_RUNS[@]}")
PEER_MED=$(median_run "${PEER_RUNS[@]}")
LITE_PEER_MED=$(median_run "${LITE_PEER_RUNS[@]}")
read -r PG_RPS PG_P50 PG_P99 <<<"$PG_MED"
read -r SQLITE_RPS SQLITE_P50 SQLITE_P99 <<<"$SQLITE_MED"
read -r PEER_TPS PEER_P50 PEER_P99 <<<"$PEER_MED"
read -r LITE_PEER_RATE LITE_PEER_MEAN <<<"$LITE_PEER_MED"
read -r PG1_RPS PG1_P50 PG1_P99 <<<"$(median_run "${PG1_RUNS[@]}")"
read -r PEER1_TPS PEER1_P50 PEER1_P99 <<<"$(median_run "${PEER1_RUNS[@]}")"
read -r SQLITE1_RPS SQLITE1_P50 SQLITE1_P99 <<<"$(median_run "${SQLITE1_RUNS[@]}")"

# ---------------------------------------------------------------- import jobs
declare -A IMPORT_SECS IMPORT_RATE LOGIN_OK
import_into() {
  local name=$1 port=${PORT_OF[$1]} conn_id t0 t1 file job status deadline inserted=0
  case $name in
    pg) conn_id=$(psql -At "$PG_BENCH_URL" -c "SELECT id FROM connections WHERE name = 'dev-users'") ;;
    sqlite) conn_id=$(sqlite3 "$SQLITE_DB" "SELECT id FROM connections WHERE name = 'dev-users'") ;;
  esac
  [[ -n $conn_id ]] || die "$name: no dev-users connection"
  t0=$(date +%s.%N)
  deadline=$((SECONDS + IMPORT_DEADLINE))
  for file in "$IMPORT_DIR"/import-*.json; do
    job=$(curl -sf -H "authorization: Bearer ${TOKEN_OF[$name]}" -F "users=@$file;type=application/json" \
      -F "connection_id=$conn_id" -F send_completion_email=false "http://127.0.0.1:$port/api/v2/jobs/users-imports" |
      jq -r .id) || die "$name: the import job was refused"
    while :; do
      status=$(curl -sf -H "authorization: Bearer ${TOKEN_OF[$name]}" "http://127.0.0.1:$port/api/v2/jobs/$job")
      case $(jq -r .status <<<"$status") in
        completed) break ;;
        failed) die "$name: job $job failed: $status" ;;
      esac
      ((SECONDS < deadline)) || die "$name: the import did not finish within $IMPORT_DEADLINE s"
      sleep 0.2
    done
    (($(jq -r .summary.failed <<<"$status") == 0)) || die "$name: job $job had failures: $status"
    inserted=$((inserted + $(jq -r .summary.inserted <<<"$status")))
  done
  t1=$(date +%s.%N)
  ((inserted == IMPORT_USERS)) || die "$name: $inserted users imported, not $IMPORT_USERS"
  IMPORT_SECS[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  IMPORT_RATE[$name]=$(awk -v n="$IMPORT_USERS" -v s="${IMPORT_SECS[$name]}" 'BEGIN { printf "%.0f", n / s }')
  # The imported hash works: the last user logs in with its password.
  local email password
  IFS=$'\t' read -r email password < <(tail -n 1 "$IMPORT_DIR/passwords.tsv")
  if curl -sf -o /dev/null "http://127.0.0.1:$port/oauth/token" -d grant_type=password -d "client_id=$CMS_ID" \
    --data-urlencode "client_secret=$CMS_SECRET" --data-urlencode "username=$email" \
    --data-urlencode "password=$password" -d "scope=openid"; then
    LOGIN_OK[$name]=yes
  else
    LOGIN_OK[$name]=no
  fi
  log "$name: $IMPORT_USERS users imported in ${IMPORT_SECS[$name]} s (${IMPORT_RATE[$name]}/s), login ${LOGIN_OK[$name]}"
}
if ((SKIP_IMPORT == 0)); then
  FILES=$(find "$IMPORT_DIR" -name 'import-*.json' | wc -l)
  for name in pg sqlite; do import_into "$name"; done
fi

# ---------------------------------------------------------------- results
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mkdir -p "$(dirname "$RESULTS")"
{
  echo "# User search and import — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "\`bench/search.sh\` (RUNS=$RUNS DURATION=$DURATION CONNECTIONS=$CONNECTIONS), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "plus the working tree; $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)),"
  echo "$(psql -At "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1) PostgreSQL, SQLite $(sqlite3 --version | cut -d' ' -f1) (shell; the idp links its own)."
  echo "Nothing pinned: the idp, its database and the load generator share the cores, and anything"
  echo "else running on the machine weighs on the figures; the ratio against the peer measured in"
  echo "the same turns is the honest one."
  echo
  echo "## Search: \`GET /api/v2/users?q=$QUERY&search_engine=v3&per_page=$PER_PAGE\`"
  echo
  echo "$USERS users seeded from one generated file (\`bench_users search\`: ~10% in group \`admin\`),"
  echo "through the idp's own import (\`gatehouse idp --users\`, both at once): PostgreSQL ${SEED_SECS[pg]} s, SQLite ${SEED_SECS[sqlite]} s."
  echo "The query matches ${TOTAL_OF[pg]} users on both. Median of $RUNS runs of ${DURATION} s,"
  echo "$CONNECTIONS keep-alive connections (oha); every run in brackets (requests/s)."
  echo
  echo "| | requests/s | p50 ms | p99 ms | runs (req/s) |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| gatehouse on PostgreSQL | $PG_RPS | $PG_P50 | $PG_P99 | $(all_of "${PG_RUNS[@]}") |"
  echo "| peer: pgbench, the store's statement, $((CONNECTIONS < 10 ? CONNECTIONS : 10)) clients | $PEER_TPS | $PEER_P50 | $PEER_P99 | $(all_of "${PEER_RUNS[@]}") |"
  echo "| gatehouse on SQLite (file, WAL) | $SQLITE_RPS | $SQLITE_P50 | $SQLITE_P99 | $(all_of "${SQLITE_RUNS[@]}") |"
  echo "| peer: sqlite3 shell, the store's statement, one connection | $LITE_PEER_RATE | $LITE_PEER_MEAN (mean) | | $(all_of "${LITE_PEER_RUNS[@]}") |"
  echo
  echo "One connection at a time (latency without queueing; the same turns):"
  echo
  echo "| | requests/s | p50 ms | p99 ms | runs (req/s) |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| gatehouse on PostgreSQL | $PG1_RPS | $PG1_P50 | $PG1_P99 | $(all_of "${PG1_RUNS[@]}") |"
  echo "| peer: pgbench, the store's statement, 1 client | $PEER1_TPS | $PEER1_P50 | $PEER1_P99 | $(all_of "${PEER1_RUNS[@]}") |"
  echo "| gatehouse on SQLite | $SQLITE1_RPS | $SQLITE1_P50 | $SQLITE1_P99 | $(all_of "${SQLITE1_RUNS[@]}") |"
  echo
  echo "- PostgreSQL: gatehouse / pgbench = $(ratio "$PG_RPS" "$PEER_TPS")× the requests/s at $CONNECTIONS connections, $(ratio "$PG1_RPS" "$PEER1_TPS")× at one;"
  echo "  p50 $PG1_P50 ms at one connection, $PG_P50 ms at $CONNECTIONS (target < 10 ms)."
  echo "- SQLite: gatehouse answers $(ratio "$SQLITE_RPS" "$LITE_PEER_RATE")× what one sqlite3 connection runs alone."
  echo
  if ((SKIP_IMPORT == 0)); then
    echo "## Import: $IMPORT_USERS users with bcrypt \`custom_password_hash\` (cost 10)"
    echo
    echo "\`POST /api/v2/jobs/users-imports\`, $FILES files (Auth0's 500 KB limit per file), one job after another,"
    echo "each polled every 0.2 s until \`completed\`; the clock runs from the first upload to the last completion."
    echo "$IMPORT_HASHES distinct hashes used round-robin (the importer stores a given hash without verifying"
    echo "it, so this does not change its work). Afterwards the last user logs in with its password."
    echo
    echo "| | seconds | users/s | login with the imported hash |"
    echo "| --- | --- | --- | --- |"
    echo "| PostgreSQL | ${IMPORT_SECS[pg]} | ${IMPORT_RATE[pg]} | ${LOGIN_OK[pg]} |"
    echo "| SQLite | ${IMPORT_SECS[sqlite]} | ${IMPORT_RATE[sqlite]} | ${LOGIN_OK[sqlite]} |"
    echo
  fi
  echo "## Plans"
  echo
  echo "PostgreSQL, \`EXPLAIN (ANALYZE, BUFFERS)\` of the statement (values written in):"
  echo
  echo '```'
  cat "$TMP/explain-pg.txt"
  echo '```'
  echo
  echo "SQLite, \`EXPLAIN QUERY PLAN\`:"
  echo
  echo '```'
  cat "$TMP/explain-sqlite.txt"
  echo '```'
} >"$RESULTS"
log "results in $RESULTS"
cat "$RESULTS"
