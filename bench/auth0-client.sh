#!/usr/bin/env bash
# auth0-client's hot path against a peer, as ratios: GET /userinfo with a valid `sid` cookie
# (sessions in the machine's Redis) beside npm express-openid-connect protecting a route with
# its session cookie (bench/peer-eoc). Each service pinned to one core (taskset -c SERVER_CPU),
# oha and Redis on the other. Reports the median requests/s of RUNS runs of DURATION s, the p99
# at a fixed 2,000 requests/s, and resident memory. Every load targets 127.0.0.1 and is bounded.
#
# Settings (environment): RUNS=3 DURATION=10 CONNECTIONS=32 WARMUP=2 RATE=2000 SERVER_CPU=0
# LOAD_CPU=1 IDP_PORT=3911 AC_PORT=3912 PEER_PORT=3913 SKIP_BUILD=0
# RESULTS=bench/results/auth0-client-<date>.md
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2}
RATE=${RATE:-2000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
IDP_PORT=${IDP_PORT:-3911}
AC_PORT=${AC_PORT:-3912}
PEER_PORT=${PEER_PORT:-3913}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${RESULTS:-"$BENCH/results/auth0-client-$(date +%F).md"}

log() { printf '[auth0-client.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

PIDS=()
TMP=$(mktemp -d "${TMPDIR:-/tmp}/auth0-client-bench.XXXXXX")
SCOPE="bench-$$"
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Redis back on the cores it had.
  if [[ -n ${REDIS_PID:-} && -n ${REDIS_AFFINITY:-} ]]; then taskset -p -c "$REDIS_AFFINITY" "$REDIS_PID" >/dev/null 2>&1 || true; fi
  # This run's sessions only (its own SESSION_SCOPE).
  redis-cli --scan --pattern "auth0-client:$SCOPE:*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in taskset curl node npm redis-cli; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
(($(nproc) >= 2)) || die "needs 2 cores"
redis-cli -h 127.0.0.1 ping >/dev/null || die "Redis must answer at 127.0.0.1:6379"
# Redis joins the load generator on LOAD_CPU for the run (its affinity is restored at exit).
REDIS_PID=$(redis-cli -h 127.0.0.1 info server | tr -d '\r' | sed -n 's/^process_id://p')
REDIS_AFFINITY=$(taskset -p -c "$REDIS_PID" 2>/dev/null | sed 's/.*: //') || REDIS_AFFINITY=""
[[ -n $REDIS_AFFINITY ]] && taskset -p -c "$LOAD_CPU" "$REDIS_PID" >/dev/null
for port in "$IDP_PORT" "$AC_PORT" "$PEER_PORT"; do
  if curl -sk -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then die "port $port is taken"; fi
done

if ((SKIP_BUILD == 0)); then
  log "cargo build --release -p gatehouse -p auth0-client"
  (cd "$ROOT" && cargo build --release -p gatehouse -p auth0-client)
fi
GATEHOUSE="$ROOT/target/release/gatehouse"
AUTH0_CLIENT="$ROOT/target/release/auth0-client"
[[ -x $GATEHOUSE && -x $AUTH0_CLIENT ]] || die "release binaries missing (run without SKIP_BUILD=1)"

export PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || { log "cargo install oha --locked"; cargo install oha --locked >&2; }
log "npm ci in bench/peer-eoc"
(cd "$BENCH/peer-eoc" && npm ci --no-audit --no-fund --loglevel=error >&2)
PEER_VERSION=$(node -p 'require(process.argv[1]).version' "$BENCH/peer-eoc/node_modules/express-openid-connect/package.json")

kv() { sed -n "s/^$1=//p" "$ROOT/examples/cms-tenant/dev.env" | tr -d "'\""; }
CMS_ID=$(kv CMS_CLIENT_ID)
CMS_SECRET=$(kv CMS_CLIENT_SECRET)
EMAIL=$(kv ADMIN_EMAIL)
PASSWORD=$(kv ADMIN_PASSWORD)

wait_for() {
  local url=$1 pid=$2 i
  for ((i = 0; i < 600; i++)); do
    curl -sk -o /dev/null --max-time 1 "$url" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
jget() { node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(eval(process.argv[1]));' "$1"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- the identity provider
# On the load core: it only serves the two sign-ins, before any measurement.
log "gatehouse idp --tls on :$IDP_PORT"
taskset -c "$LOAD_CPU" "$GATEHOUSE" idp --tenant "$ROOT/examples/cms-tenant/tenant.yaml" \
  --keywords "$ROOT/examples/cms-tenant/dev.env" --users "$ROOT/examples/cms-tenant/users.json" \
  --users-connection dev-users --listen "127.0.0.1:$IDP_PORT" --data "$TMP/idp" --tls \
  >"$TMP/idp.log" 2>&1 &
IDP_PID=$!
PIDS+=("$IDP_PID")
wait_for "https://127.0.0.1:$IDP_PORT/healthz" "$IDP_PID" || die "idp did not start: $(tail -20 "$TMP/idp.log")"
CA="$TMP/idp/ca.pem"
ISSUER="https://localhost:$IDP_PORT"

# ---------------------------------------------------------------- auth0-client
mkdir -p "$TMP/config"
cat >"$TMP/config/config.json" <<EOF
{
  "clients": {"cms": {"auth0Url": "$ISSUER", "clientId": "$CMS_ID", "clientSecret": "$CMS_SECRET",
    "redirectUrl": "http://localhost:8080/web-login/callback",
    "scopes": ["offline_access", "profile", "email", "website"], "audience": "http://localhost:8080/"}},
  "defaultClient": "cms",
  "managementClient": {"auth0Url": "$ISSUER", "clientId": "$(kv MGMT_CLIENT_ID)", "clientSecret": "$(kv MGMT_CLIENT_SECRET)"},
  "customClaimsNamespaces": ["https://cms.example.test/app_metadata", "https://cms.example.test/user_metadata"]
}
EOF
log "auth0-client on :$AC_PORT (core $SERVER_CPU), Redis scope $SCOPE"
SERVICE_CONFIG_PATH="$TMP/config" SERVICE_CONFIG_FILE_NAME=config HTTP_PORT=$AC_PORT \
  REDIS_HOSTS=127.0.0.1:6379 SESSION_SCOPE=$SCOPE SSL_CERT_FILE=$CA DELAY_SHUTDOWN_SECONDS=0 \
  taskset -c "$SERVER_CPU" "$AUTH0_CLIENT" >"$TMP/auth0-client.log" 2>&1 &
AC_PID=$!
PIDS+=("$AC_PID")
wait_for "http://127.0.0.1:$AC_PORT/-/ready" "$AC_PID" || die "auth0-client did not start: $(tail "$TMP/auth0-client.log")"
SID=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$AC_PORT/oauth/token" -H 'client-type: cms' \
  --data-urlencode grant_type=password --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD" |
  sed -n 's/^[Ss]et-[Cc]ookie: \(sid=[^;]*\).*/\1/p')
[[ -n $SID ]] || die "no sid from the password grant: $(tail -5 "$TMP/auth0-client.log")"
curl -sf -H "cookie: $SID" "http://127.0.0.1:$AC_PORT/userinfo" >/dev/null || die "/userinfo refused the sid"

# ---------------------------------------------------------------- the peer
log "express-openid-connect $PEER_VERSION on :$PEER_PORT (core $SERVER_CPU)"
(cd "$BENCH/peer-eoc" && ISSUER="$ISSUER" CLIENT_ID="$CMS_ID" CLIENT_SECRET="$CMS_SECRET" PORT=$PEER_PORT \
  NODE_EXTRA_CA_CERTS="$CA" NODE_ENV=production exec taskset -c "$SERVER_CPU" node server.mjs) >"$TMP/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
wait_for "http://127.0.0.1:$PEER_PORT/userinfo" "$PEER_PID" || die "peer did not start: $(tail "$TMP/peer.log")"
PEER_COOKIE=$(cd "$BENCH/peer-eoc" && NODE_EXTRA_CA_CERTS="$CA" node login.mjs "http://127.0.0.1:$PEER_PORT" "$EMAIL" "$PASSWORD") ||
  die "peer sign-in failed: $(tail "$TMP/peer.log")"

# ---------------------------------------------------------------- measuring
# run NAME URL COOKIE PID [extra oha args…] → "rps p50_ms p99_ms busy%"; only 200s count.
run() {
  local name=$1 url=$2 cookie=$3 pid=$4 out="$TMP/$1.json" cpu0 t0 busy
  shift 4
  cpu0=$(cpu_secs "$pid")
  t0=$(date +%s.%N)
  taskset -c "$LOAD_CPU" oha --no-tui --output-format json -c "$CONNECTIONS" -H "cookie: $cookie" "$@" "$url" >"$out" 2>"$out.err" ||
    die "oha failed for $name: $(cat "$out.err")"
  busy=$(awk -v c0="$cpu0" -v c1="$(cpu_secs "$pid")" -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.0f", (c1 - c0) / (t1 - t0) * 100 }')
  jget '(() => {
    const codes = j.statusCodeDistribution || {};
    const other = Object.entries(codes).filter(([c]) => c !== "200");
    if (other.length) throw new Error("non-200 answers: " + JSON.stringify(other));
    const lp = j.latencyPercentiles;
    return [((codes["200"] || 0) / j.summary.total).toFixed(0), (lp.p50 * 1000).toFixed(2), (lp.p99 * 1000).toFixed(2)].join(" ");
  })()' <"$out" | tr '\n' ' '
  echo "$busy"
}

declare -A RPS RUNS_OF P99_MAX P99_RATE RSS BUSY
measure() {
  local who=$1 url=$2 cookie=$3 pid=$4 i rps p50 p99 busy
  local -a all=()
  run "$who-warmup" "$url" "$cookie" "$pid" -z "${WARMUP}s" >/dev/null
  for ((i = 1; i <= RUNS; i++)); do
    read -r rps p50 p99 busy <<<"$(run "$who-$i" "$url" "$cookie" "$pid" -z "${DURATION}s")"
    log "$who run $i: $rps req/s (p50 $p50 ms, p99 $p99 ms, server CPU $busy%)"
    all+=("$rps")
    P99_MAX[$who]=$p99
    BUSY[$who]=$busy
  done
  RPS[$who]=$(median "${all[@]}")
  RUNS_OF[$who]=$(IFS=/ && echo "${all[*]}")
  read -r rps p50 p99 busy <<<"$(run "$who-rate" "$url" "$cookie" "$pid" -z "${DURATION}s" -q "$RATE")"
  log "$who at $RATE req/s: p50 $p50 ms, p99 $p99 ms"
  P99_RATE[$who]=$p99
  RSS[$who]=$(rss_kb "$pid")
}

# Nothing else on the cores while measuring: wait (up to QUIET_WAIT s) until the machine is
# at least 90% idle over 2 s, and note it in the results when it never was.
QUIET_WAIT=${QUIET_WAIT:-900}
idle_pct() {
  local a b
  a=($(head -1 /proc/stat))
  sleep 2
  b=($(head -1 /proc/stat))
  awk -v i0="${a[4]}" -v i1="${b[4]}" -v t0="$(IFS=+ && echo "$((${a[*]:1}))")" -v t1="$(IFS=+ && echo "$((${b[*]:1}))")" \
    'BEGIN { printf "%.0f", (i1 - i0) / (t1 - t0) * 100 }'
}
wait_quiet() {
  local waited=0 idle
  while idle=$(idle_pct) && ((idle < 90)); do
    if ((waited >= QUIET_WAIT)); then
      log "warning: the machine is still busy (${idle}% idle); measuring anyway"
      BUSY_NOTE="other processes were using the machine during the measurement (${idle}% idle before it): figures are pessimistic"
      return
    fi
    ((waited == 0)) && log "waiting for the machine to be quiet (${idle}% idle)"
    sleep 8
    waited=$((waited + 10))
  done
  log "machine ${idle}% idle"
}
BUSY_NOTE=""

wait_quiet
measure auth0-client "http://127.0.0.1:$AC_PORT/userinfo" "$SID" "$AC_PID"
kill -STOP "$AC_PID" # keep it off the core while the peer runs
wait_quiet
measure eoc "http://127.0.0.1:$PEER_PORT/userinfo" "$PEER_COOKIE" "$PEER_PID"
kill -CONT "$AC_PID"

RATIO=$(awk -v a="${RPS[auth0-client]}" -v b="${RPS[eoc]}" 'BEGIN { printf "%.1f", a / b }')
mkdir -p "$(dirname "$RESULTS")"
{
  echo "# auth0-client /userinfo vs express-openid-connect — $(date -u '+%F %H:%M UTC')"
  echo
  echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); each service pinned to core $SERVER_CPU,"
  echo "oha and Redis on core $LOAD_CPU; $CONNECTIONS connections; median of $RUNS runs of ${DURATION} s after a ${WARMUP} s warm-up."
  echo "auth0-client: release build, sessions in Redis, default logging (one JSON line per request) to a file."
  echo "Peer: express-openid-connect $PEER_VERSION (express 4), NODE_ENV=production, its encrypted rolling appSession cookie."
  [[ -n $BUSY_NOTE ]] && echo && echo "**Note:** $BUSY_NOTE."
  echo
  echo "| measure | auth0-client | express-openid-connect | ratio / target |"
  echo "| --- | --- | --- | --- |"
  echo "| /userinfo req/s (runs) | ${RPS[auth0-client]} (${RUNS_OF[auth0-client]}) | ${RPS[eoc]} (${RUNS_OF[eoc]}) | ${RATIO}× (target ≥ 10×) |"
  echo "| p99 at full load, ms | ${P99_MAX[auth0-client]} | ${P99_MAX[eoc]} | |"
  echo "| p99 at $RATE req/s, ms | ${P99_RATE[auth0-client]} | ${P99_RATE[eoc]} | target < 5 ms |"
  echo "| server CPU at full load | ${BUSY[auth0-client]}% | ${BUSY[eoc]}% | |"
  echo "| RSS after the runs | $((RSS[auth0-client] / 1024)) MB | $((RSS[eoc] / 1024)) MB | target < 20 MB |"
} | tee "$RESULTS"
log "results in $RESULTS"
