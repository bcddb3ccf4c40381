#!/usr/bin/env bash
# Server time of every admin console page with 100,000 users in PostgreSQL, against the
# Management API call the page makes (the console renders pages from /api/v2 answers, so that
# call is its floor). See bench/README.md.
#
# 1. `cargo build --release -p gatehouse` (SKIP_BUILD=1 to reuse the binary).
# 2. A fresh PostgreSQL database on PG_URL's server (created here, dropped at exit; no other
#    database is touched). `gatehouse console add-admin` migrates it and adds the admin; the idp
#    starts on it with the example tenant; one user is created through the Management API and
#    cloned USERS times in one INSERT … SELECT (each clone: that row with a new id and email),
#    so the rows are exactly those the idp writes; then ANALYZE, as autovacuum would.
# 3. The admin signs in through the console's own code flow (curl and a cookie jar).
# 4. Each page is requested SAMPLES times, one request at a time on fresh connections; the
#    server time of one is curl's time to first byte less its time to the request being sent
#    (time_starttransfer - time_pretransfer). p50/p95 per page go to RESULTS.
#
# Everything targets 127.0.0.1; the script stops every process it started, drops its database,
# and leaves only the results file. The machine may be shared: the results say its load.
#
# Settings (environment): USERS=100000 SAMPLES=200 WARMUP=20 PG_URL=postgres://postgres@127.0.0.1:5432/test
# (the example tenant grants the Management API to its M2M app for https://AUTH0_DOMAIN/api/v2/,
# AUTH0_DOMAIN being the public URL's host)
# PORT=3921 SKIP_BUILD=0 GATEHOUSE=<target>/release/gatehouse RESULTS=bench/results/console-<date>.md
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USERS=${USERS:-100000}
SAMPLES=${SAMPLES:-200}
WARMUP=${WARMUP:-20}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PORT=${PORT:-3921}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${RESULTS:-"$ROOT/bench/results/console-$(date +%F).md"}
TARGET=${CARGO_TARGET_DIR:-"$ROOT/target"}
TENANT="$ROOT/examples/cms-tenant"
BASE="http://127.0.0.1:$PORT"
ADMIN=bench-admin@example.com
ADMIN_PASSWORD="Bench-$$-$RANDOM-console"

log() { printf '[console.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in curl jq psql awk sort; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
[[ $PG_URL =~ ^postgres(ql)?://[^/]*@?(127\.0\.0\.1|localhost)(:[0-9]+)?/ ]] || die "PG_URL must point at 127.0.0.1"
if curl -s -o /dev/null --max-time 1 "$BASE/"; then die "port $PORT is taken"; fi

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-console.XXXXXX")
PG_DB="gatehouse_console_bench_$$"
PG_BENCH_URL="${PG_URL%/*}/$PG_DB"
PG_CREATED=0
IDP_PID=
cleanup() {
  if [[ -n $IDP_PID ]]; then kill "$IDP_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if ((PG_CREATED)); then
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || log "could not drop $PG_DB"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((SKIP_BUILD == 0)); then
  log "cargo build --release -p gatehouse"
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi
GATEHOUSE=${GATEHOUSE:-"$TARGET/release/gatehouse"}
[[ -x $GATEHOUSE ]] || die "$GATEHOUSE missing (run without SKIP_BUILD=1)"

env_value() { sed -n "s/^$1=//p" "$TENANT/dev.env" | tr -d "'\""; }
MGMT_ID=$(env_value MGMT_CLIENT_ID)
MGMT_SECRET=$(env_value MGMT_CLIENT_SECRET)

# ---------------------------------------------------------------- database, admin, idp
log "PostgreSQL: creating database $PG_DB"
psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
PG_CREATED=1
mkdir -p "$TMP/data"
"$GATEHOUSE" console add-admin "$ADMIN" --password "$ADMIN_PASSWORD" --data "$TMP/data" \
  --database "$PG_BENCH_URL" >"$TMP/add-admin.log" 2>&1 || die "add-admin: $(cat "$TMP/add-admin.log")"

GATEHOUSE_MANAGEMENT_RATE_LIMIT=1000000 RUST_LOG=warn "$GATEHOUSE" idp \
  --tenant "$TENANT/tenant.yaml" --keywords "$TENANT/dev.env" --database "$PG_BENCH_URL" \
  --data "$TMP/data" --listen "127.0.0.1:$PORT" --public-url "$BASE/" >"$TMP/idp.log" 2>&1 &
IDP_PID=$!
deadline=$((SECONDS + 120))
until curl -sf -o /dev/null "$BASE/readyz"; do
  kill -0 "$IDP_PID" 2>/dev/null || die "the idp exited: $(tail -n 5 "$TMP/idp.log")"
  ((SECONDS < deadline)) || die "the idp is not ready after 120 s"
  sleep 0.2
done

TOKEN=$(curl -sf "$BASE/oauth/token" -d grant_type=client_credentials -d "client_id=$MGMT_ID" \
  --data-urlencode "client_secret=$MGMT_SECRET" --data-urlencode "audience=https://127.0.0.1:$PORT/api/v2/" | jq -r .access_token)
[[ -n $TOKEN && $TOKEN != null ]] || die "no Management API token"
api() { curl -sf -H "authorization: Bearer $TOKEN" "$@"; }

# ---------------------------------------------------------------- users
SEED_EMAIL=seed.user@bench.example
seed=$(api -H 'content-type: application/json' "$BASE/api/v2/users" \
  -d "{\"connection\":\"dev-users\",\"email\":\"$SEED_EMAIL\",\"password\":\"Seed-user-$$-pass\",\"app_metadata\":{\"groups\":[\"users\"]},\"user_metadata\":{\"lang\":\"en\"}}") ||
  die "creating the seed user failed"
SEED_ID=$(jq -r .user_id <<<"$seed")
SEED_HEX=${SEED_ID#*|}
log "cloning $SEED_ID into $USERS users"
t0=$(date +%s.%N)
# Every column of the seed row, as JSON, with its id and email replaced: whatever columns the
# migrations have added come along unchanged (generated ones are computed again).
psql -q -v ON_ERROR_STOP=1 "$PG_BENCH_URL" -v seed="$SEED_ID" -v hex="$SEED_HEX" -v email="$SEED_EMAIL" -v n="$USERS" <<'SQL' >/dev/null
SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS cols
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'users' AND is_generated = 'NEVER' \gset
INSERT INTO users (:cols)
SELECT :cols FROM (
  SELECT (jsonb_populate_record(NULL::users,
            replace(replace(to_jsonb(u)::text, :'hex', substr(md5(i::text) || md5(i::text || 'x'), 1, length(:'hex'))),
                    :'email', 'user' || i || '@bench.example')::jsonb)).*
  FROM users u, generate_series(1, :n) AS i
  WHERE u.user_id = :'seed'
) AS clones;
ANALYZE;
SQL
SEED_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
total=$(api "$BASE/api/v2/users?include_totals=true&per_page=1" | jq -r .total)
log "users seeded in ${SEED_SECS} s; the API reports total $total (Auth0 caps totals at 1000)"
USER_ID=$(api "$BASE/api/v2/users?per_page=1&page=500" | jq -r '.[0].user_id')
[[ $USER_ID == auth0\|* ]] || die "no user on page 500"
# The example's M2M application holds the user scopes only: the other ids come from the console's
# own pages (its links), read with the admin's session after the sign-in below.

# ---------------------------------------------------------------- console sign-in
JAR="$TMP/cookies"
browse() { curl -s -b "$JAR" -c "$JAR" -o "$TMP/page.html" -w '%{http_code} %{redirect_url}\n' "$@"; }
origin_less() { sed -E 's#^https?://[^/]+##' <<<"$1"; }
read -r code next < <(browse "$BASE/console/login")
[[ $code == 303 ]] || die "/console/login answered $code"
read -r code next < <(browse "$BASE$(origin_less "$next")")
[[ $code == 302 ]] || die "/authorize answered $code"
login_page="$BASE$(origin_less "$next")"
browse "$login_page" >/dev/null
hidden() { grep -o "name=\"$1\" value=\"[^\"]*\"" "$TMP/page.html" | head -n 1 | sed -E 's/.*value="([^"]*)"/\1/'; }
state=$(hidden state)
csrf=$(hidden csrf)
[[ -n $state && -n $csrf ]] || die "no state/csrf on the login page"
read -r code next < <(browse "$login_page" --data-urlencode "state=$state" --data-urlencode "csrf=$csrf" \
  --data-urlencode "connection=gatehouse-console-admins" --data-urlencode "username=$ADMIN" \
  --data-urlencode "password=$ADMIN_PASSWORD")
[[ $code == 302 ]] || die "the sign-in form answered $code"
read -r code next < <(browse "$BASE$(origin_less "$next")")
[[ $code == 303 ]] || die "/console/callback answered $code"
grep -q gatehouse_console "$JAR" || die "no console session cookie"
# first_id PAGE PREFIX: the first id linked as PREFIX{id}/ on a console page.
first_id() { curl -s -b "$JAR" "$BASE$1" | grep -o "href=\"$2[^\"/]*/" | head -n 1 | sed -E "s#href=\"$2##; s#/\$##"; }
CLIENT_ID=$(first_id /console/applications /console/applications/)
API_ID=$(first_id /console/apis /console/apis/)
CONNECTION_ID=$(first_id /console/connections/database /console/connections/database/)
[[ -n $CLIENT_ID && -n $API_ID && -n $CONNECTION_ID ]] || die "no application/API/connection links on the console's lists"

# ---------------------------------------------------------------- measurements
# sample URL [CURL ARGS…] -> SAMPLES server times in ms, one a line; any other status than 200 stops.
sample() {
  local url=$1 i out
  shift
  for ((i = 0; i < WARMUP + SAMPLES; i++)); do
    out=$(curl -s -o /dev/null -b "$JAR" -w '%{http_code} %{time_pretransfer} %{time_starttransfer}\n' "$@" "$url")
    read -r code pre first <<<"$out"
    [[ $code == 200 ]] || die "$url answered $code"
    ((i < WARMUP)) || awk -v a="$pre" -v b="$first" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
  done
}
# pct FILE P -> the P-th percentile (nearest rank) of FILE's numbers.
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; printf "%.1f", v[i] }'; }

enc() { jq -rn --arg v "$1" '$v | @uri'; }
declare -a NAMES URLS
add() {
  NAMES+=("$1")
  URLS+=("$2")
}
add "console /console/users" "$BASE/console/users"
add "console /console/users?page=19" "$BASE/console/users?page=19"
add "console /console/users?q=user77777@bench.example" "$BASE/console/users?q=$(enc user77777@bench.example)"
add "console /console/users/{id}" "$BASE/console/users/$(enc "$USER_ID")"
add "console /console/users/new" "$BASE/console/users/new"
add "console /console/roles" "$BASE/console/roles"
add "console /console/applications" "$BASE/console/applications"
add "console /console/applications/{id}/settings" "$BASE/console/applications/$CLIENT_ID/settings"
add "console /console/applications/{id}/connections" "$BASE/console/applications/$CLIENT_ID/connections"
add "console /console/applications/{id}/apis" "$BASE/console/applications/$CLIENT_ID/apis"
add "console /console/connections/database" "$BASE/console/connections/database"
add "console /console/connections/database/{id}/settings" "$BASE/console/connections/database/$CONNECTION_ID/settings"
add "console /console/connections/social" "$BASE/console/connections/social"
add "console /console/apis" "$BASE/console/apis"
add "console /console/apis/{id}/settings" "$BASE/console/apis/$API_ID/settings"
add "console /console/actions/library" "$BASE/console/actions/library"
add "console /console/actions/flows/login" "$BASE/console/actions/flows/login"
add "console /console/logs" "$BASE/console/logs"
add "console /console/settings/advanced" "$BASE/console/settings/advanced"
USERS_CALL="$BASE/api/v2/users?include_totals=true&search_engine=v3&per_page=50&page=0&q="
add "api GET /api/v2/users?include_totals=true&page=0 (the users page's call)" "$USERS_CALL"
add "api GET /api/v2/users?include_totals=true&page=19" "${USERS_CALL/page=0/page=19}"
add "api GET /api/v2/users/{id}" "$BASE/api/v2/users/$(enc "$USER_ID")"

declare -A P50 P95
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]}
  file="$TMP/samples-$i"
  if [[ $name == api* ]]; then
    sample "${URLS[$i]}" -H "authorization: Bearer $TOKEN" >"$file"
  else
    sample "${URLS[$i]}" >"$file"
  fi
  P50[$name]=$(pct "$file" 50)
  P95[$name]=$(pct "$file" 95)
  log "$name: p50 ${P50[$name]} ms, p95 ${P95[$name]} ms"
done

# ---------------------------------------------------------------- results
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
users_api="api GET /api/v2/users?include_totals=true&page=0 (the users page's call)"
{
  echo "# Admin console pages, $USERS users in PostgreSQL ($(date -u +%F))"
  echo
  echo "bench/console.sh: $(basename "$(dirname "$GATEHOUSE")") build of $(git -C "$ROOT" rev-parse --short HEAD), PostgreSQL $(psql -At "$PG_URL" -c 'SHOW server_version'),"
  echo "$(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: others were compiling)."
  echo "$USERS users cloned from one the Management API created, in ${SEED_SECS} s (one INSERT … SELECT)."
  echo "$SAMPLES sequential requests per page after $WARMUP warm-up ones, each on a fresh connection;"
  echo "server time = time to first byte − time the request was sent (curl), in ms."
  echo
  echo "| request | p50 ms | p95 ms | p95 / users API call p95 |"
  echo "| --- | ---: | ---: | ---: |"
  for name in "${NAMES[@]}"; do
    echo "| \`${name#* }\` ($(cut -d' ' -f1 <<<"$name")) | ${P50[$name]} | ${P95[$name]} | $(ratio "${P95[$name]}" "${P95[$users_api]}") |"
  done
  echo
  worst=0
  for name in "${NAMES[@]}"; do
    [[ $name == console* ]] || continue
    worst=$(awk -v a="$worst" -v b="${P95[$name]}" 'BEGIN { print (b > a ? b : a) }')
  done
  echo "Slowest console page p95: $worst ms (target < 50 ms)."
} >"$RESULTS"
log "results in $RESULTS"
cat "$RESULTS"
