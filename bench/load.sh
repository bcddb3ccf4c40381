#!/usr/bin/env bash
# Gatehouse's speed against a peer, as ratios: requests/s of `gatehouse idp` and of npm
# oidc-provider (bench/peer/server.mjs), each pinned to one core, for client_credentials grants,
# JWKS and /userinfo; RSS after 100,000 tokens; the core's raw RSA-2048 signing rate; logins/s
# (password-realm grants, and full authorization-code logins beside oidc-provider's) against the
# core's bcrypt rate. See bench/README.md. Every load targets 127.0.0.1 and is bounded in time
# or count.
#
# Settings (environment): RUNS=3 DURATION=10 CONNECTIONS=32 WARMUP=2 RSS_TOKENS=100000
# SERVER_CPU=0 LOAD_CPU=1 GH_PORT=3901 PEER_PORT=3902 SKIP_BUILD=0 BUILD_WAIT=600 LOADGEN=oha|wrk
# LOGIN_CONNECTIONS=4 LOGIN_MAX=100000 RESULTS=bench/results/<date>.md
# GATEHOUSE_BIN (default <target>/release/gatehouse), BENCH_LOAD_BIN (default
# <target>/release/examples/bench_load), <target> being CARGO_TARGET_DIR or target/: point
# GATEHOUSE_BIN at another build (e.g. an older commit's) to measure it with this script.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2}
RSS_TOKENS=${RSS_TOKENS:-100000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
GH_PORT=${GH_PORT:-3901}
PEER_PORT=${PEER_PORT:-3902}
SKIP_BUILD=${SKIP_BUILD:-0}
BUILD_WAIT=${BUILD_WAIT:-600}
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-4}
LOGIN_MAX=${LOGIN_MAX:-100000}
RESULTS=${RESULTS:-"$BENCH/results/$(date +%F).md"}

log() { printf '[load.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
# Stops the servers still running (this shell's background jobs: nothing it did not start, and
# nothing already stopped, whose id may belong to another process by now).
cleanup() {
  local pid
  for pid in $(jobs -p); do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
for tool in taskset curl node npm openssl sqlite3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
NCPU=$(nproc)
((NCPU >= 2)) || die "needs 2 cores (server on $SERVER_CPU, load generator on $LOAD_CPU); this machine has $NCPU"
for port in "$GH_PORT" "$PEER_PORT"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "port $port is taken (set GH_PORT / PEER_PORT)"
  fi
done

# JSON on stdin, a JavaScript expression over `j` printed (node is needed for the peer anyway);
# `rate(x)` formats a rate: a decimal below 100/s (logins), where a whole number is too coarse.
jget() { node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); const rate = (x) => x.toFixed(x < 100 ? 1 : 0); const v = eval(process.argv[1]); console.log(typeof v === "object" ? JSON.stringify(v) : v);' "$1"; }

if ((SKIP_BUILD == 0)); then
  log "cargo build --release -p gatehouse, and idp's example bench_load"
  (cd "$ROOT" && cargo build --release -p gatehouse && cargo build --release -p idp --example bench_load)
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
GATEHOUSE=${GATEHOUSE_BIN:-$TARGET/release/gatehouse}
BENCH_LOAD=${BENCH_LOAD_BIN:-$TARGET/release/examples/bench_load}
for bin in "$GATEHOUSE" "$BENCH_LOAD"; do
  [[ -x $bin ]] || die "$bin missing (run without SKIP_BUILD=1)"
done

# Load generator: oha, else (or with LOADGEN=wrk) Debian's wrk.
export PATH="$HOME/.cargo/bin:$PATH"
LOADGEN=${LOADGEN:-}
install_wrk() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >&2; }
  command -v wrk >/dev/null || die "wrk could not be installed"
}
case $LOADGEN in
  wrk) install_wrk ;;
  oha | "")
    LOADGEN=oha
    if ! command -v oha >/dev/null; then
      log "installing oha (cargo install oha --locked; a few minutes)"
      if ! cargo install oha --locked >&2; then
        log "oha did not build; falling back to Debian's wrk"
        install_wrk
        LOADGEN=wrk
      fi
    fi
    ;;
  *) die "LOADGEN must be oha or wrk" ;;
esac
log "load generator: $LOADGEN"

log "npm ci in bench/peer"
(cd "$BENCH/peer" && npm ci --no-audit --no-fund --loglevel=error >&2)
PEER_VERSION=$(node -p 'require(process.argv[1]).version' "$BENCH/peer/node_modules/oidc-provider/package.json")


# ---------------------------------------------------------------- one load run
# load NAME URL METHOD BODY AUTH_HEADER [fixed request count] -> "rps p50_ms p99_ms ok busy% others%"
# on stdout (busy%: CPU time SERVER_PID used over the run's wall time, below ~95% for a pinned
# server the load generator, not the server, was the limit; others%: CPU that other processes
# took, in % of a core), the raw report in $TMP/NAME.out.
# Only 200 answers count; any other status fails the run.
load() {
  local name=$1 url=$2 method=$3 body=$4 auth=$5 count=${6:-} out="$TMP/$1.out"
  local -a args
  if [[ $LOADGEN == oha ]]; then
    args=(--no-tui --output-format json -c "$CONNECTIONS" -m "$method")
    if [[ -n $count ]]; then args+=(-n "$count"); else args+=(-z "${DURATION}s"); fi
    [[ -n $body ]] && args+=(-H "content-type: application/x-www-form-urlencoded" -d "$body")
    [[ -n $auth ]] && args+=(-H "authorization: $auth")
    times >"$out.times0"
    taskset -c "$LOAD_CPU" oha "${args[@]}" "$url" >"$out" 2>"$out.err" &
  else
    local lua="$TMP/$name.lua" dur=$DURATION
    # wrk has no request count: approximate one by time at RATE_HINT requests/s (only used to
    # top up token counts, in rounds until enough).
    [[ -n $count ]] && dur=$((count / ${RATE_HINT:-1000} + 1))
    {
      printf 'wrk.method = "%s"\n' "$method"
      [[ -n $body ]] && printf 'wrk.body = "%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' "$body"
      [[ -n $auth ]] && printf 'wrk.headers["Authorization"] = "%s"\n' "$auth"
      cat <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format('{"requests":%d,"secs":%f,"bad":%d,"errors":%d,"p50":%f,"p99":%f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
    } >"$lua"
    times >"$out.times0"
    taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNECTIONS" -d "${dur}s" -s "$lua" "$url" >"$out" 2>"$out.err" &
  fi
  local pid=$! cpu0 t0 m0 busy others
  cpu0=$(cpu_secs "$SERVER_PID")
  m0=$(machine_busy)
  t0=$(date +%s.%N)
  wait "$pid" || die "$LOADGEN failed for $name: $(cat "$out.err")"
  times >"$out.times1"
  busy=$(awk -v c0="$cpu0" -v c1="$(cpu_secs "$SERVER_PID")" -v t0="$t0" -v t1="$(date +%s.%N)" \
    'BEGIN { printf "%.0f", (c1 - c0) / (t1 - t0) * 100 }')
  # What other processes took: the machine's busy time less the server's and the load
  # generator's (this shell's reaped children, from the `times` builtin).
  others=$(awk -v m0="$m0" -v m1="$(machine_busy)" -v t0="$t0" -v t1="$(date +%s.%N)" -v b="$busy" \
    -v g0="$(children_cpu "$out.times0")" -v g1="$(children_cpu "$out.times1")" \
    'BEGIN { o = ((m1 - m0) - (g1 - g0)) / (t1 - t0) * 100 - b; printf "%.0f", (o > 0) ? o : 0 }')
  if [[ $LOADGEN == oha ]]; then
    jget '(() => {
      const codes = j.statusCodeDistribution || {};
      const ok = codes["200"] || 0;
      const other = Object.entries(codes).filter(([c]) => c !== "200");
      if (other.length) throw new Error("non-200 answers: " + JSON.stringify(other));
      const lp = j.latencyPercentiles || {};
      return [rate(ok / j.summary.total), (lp.p50 * 1000).toFixed(2), (lp.p99 * 1000).toFixed(2), ok].join(" ");
    })()' <"$out" | tr '\n' ' ' || die "$name: $(head -c 2000 "$out")"
  else
    local json
    json=$(grep '^{"requests"' "$out") || die "$name: no wrk summary: $(cat "$out")"
    jget '(() => {
      if (j.bad) throw new Error(j.bad + " non-2xx answers");
      const ok = j.requests - j.errors;
      return [rate(ok / j.secs), j.p50.toFixed(2), j.p99.toFixed(2), ok].join(" ");
    })()' <<<"$json" | tr '\n' ' ' || die "$name: $json"
  fi
  echo "$busy $others"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Requests, by "SERVER.ENDPOINT": REQ_URL, REQ_METHOD, REQ_BODY, REQ_AUTH; PID_OF[SERVER].
declare -A REQ_URL REQ_METHOD REQ_BODY REQ_AUTH PID_OF
# Results: RPS (median), RUNS_OF (each run), P99, BUSY, EFF (of the median run), ALL_RUNS (work);
# TOKENS[SERVER] counts the tokens each issued, REQUESTS[SERVER] every answer; OTHERS_MAX the most
# CPU other processes took in a run.
declare -A RPS RUNS_OF P99 BUSY EFF ALL_RUNS TOKENS REQUESTS
OTHERS_MAX=0

# run_once SERVER ENDPOINT LABEL: one run (of WARMUP seconds for the label "warmup").
run_once() {
  local server=$1 endpoint=$2 label=$3 key="$1.$2" res rps p50 p99 ok busy others saved=$DURATION
  SERVER_PID=${PID_OF[$server]}
  if [[ $label == warmup ]]; then DURATION=$WARMUP; fi
  res=$(load "$server-$endpoint-$label" "${REQ_URL[$key]}" "${REQ_METHOD[$key]}" "${REQ_BODY[$key]}" "${REQ_AUTH[$key]}")
  DURATION=$saved
  read -r rps p50 p99 ok busy others <<<"$res"
  if [[ $endpoint == client_credentials ]]; then TOKENS[$server]=$((${TOKENS[$server]:-0} + ok)); fi
  REQUESTS[$server]=$((${REQUESTS[$server]:-0} + ok))
  if [[ $label == warmup ]]; then return 0; fi
  log "$server $endpoint run $label: $rps req/s (p50 $p50 ms, p99 $p99 ms, server CPU $busy%, other processes $others%)"
  ALL_RUNS[$key]="${ALL_RUNS[$key]:-} $rps:$p99:$busy"
  if ((others > OTHERS_MAX)); then OTHERS_MAX=$others; fi
}

# measure ENDPOINT SERVER...: a warm-up each, then RUNS rounds, the servers taking turns so that
# whatever else the machine does falls on all of them alike; then the medians.
measure() {
  local endpoint=$1 server i
  shift
  for server in "$@"; do run_once "$server" "$endpoint" warmup; done
  for ((i = 1; i <= RUNS; i++)); do
    if [[ $endpoint == client_credentials && -n ${SAMPLE_RSA:-} ]]; then RSA_RUNS+=("$(rsa_signs)"); fi
    if [[ $endpoint == password_realm ]]; then BCRYPT_RUNS+=("$(bcrypt_rate)"); fi
    for server in "$@"; do run_once "$server" "$endpoint" "$i"; done
  done
  for server in "$@"; do summarise "$server.$endpoint"; done
}

summarise() {
  local key=$1 run chosen
  local -a runs all=()
  read -r -a runs <<<"${ALL_RUNS[$key]}"
  for run in "${runs[@]}"; do all+=("${run%%:*}"); done
  RPS[$key]=$(median "${all[@]}")
  RUNS_OF[$key]=$(
    IFS=/
    echo "${all[*]}"
  )
  # Latency and CPU of the median run (of the first run when the median falls between two).
  chosen=${runs[0]}
  for run in "${runs[@]}"; do
    if [[ ${run%%:*} == "${RPS[$key]}" ]]; then chosen=$run; fi
  done
  chosen=${chosen#*:}
  P99[$key]=${chosen%%:*}
  BUSY[$key]=${chosen#*:}
  # Requests per CPU-second of the server: its speed even where the load generator was the limit.
  EFF[$key]=$(awk -v r="${RPS[$key]}" -v b="${BUSY[$key]}" 'BEGIN { printf "%.0f", (b > 0) ? r * 100 / b : 0 }')
}

wait_http() {
  local url=$1 pid=$2 i
  for ((i = 0; i < 300; i++)); do
    curl -sf -o /dev/null --max-time 1 "$url" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Busy CPU seconds of the whole machine so far (every core: user, nice, system, and steal, the time
# the hypervisor gave to other machines; interrupts are left out, loopback traffic lands there).
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $9) / hz }' /proc/stat; }

# CPU seconds of the children a shell has reaped, from the output of `times` (its second line).
children_cpu() {
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, /m|s/); t += p[1] * 60 + p[2] } print t }' "$1"
}

# CPU seconds (user + system) a process has used so far.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# top_up SERVER URL BODY: issue client_credentials tokens until TOKENS[SERVER] >= RSS_TOKENS.
top_up() {
  local server=$1 url=$2 body=$3 missing res rps p50 p99 ok busy others round
  RATE_HINT=${RPS[$server.client_credentials]%.*}
  SERVER_PID=${PID_OF[$server]}
  for ((round = 1; round <= 10; round++)); do
    missing=$((RSS_TOKENS - ${TOKENS[$server]:-0}))
    ((missing > 0)) || return 0
    log "$server: issuing $missing more tokens (to $RSS_TOKENS) before reading its RSS"
    res=$(load "$server-topup-$round" "$url" POST "$body" "" "$missing")
    read -r rps p50 p99 ok busy others <<<"$res"
    TOKENS[$server]=$((${TOKENS[$server]:-0} + ok))
    REQUESTS[$server]=$((${REQUESTS[$server]:-0} + ok))
  done
}

urlencode() { node -p 'encodeURIComponent(process.argv[1])' "$1"; }
env_value() { sed -n "s/^$1=//p" "$ROOT/examples/cms-tenant/dev.env" | sed "s/^'\(.*\)'$/\1/"; }

# ---------------------------------------------------------------- a quiet machine
# Other work on these two cores (builds, test suites) would skew every figure: wait up to
# BUILD_WAIT seconds for 10 quiet seconds in a row (under 25% of one core busy).
BUSY_NOTE=""
quiet=0 waited=0
while ((quiet < 10)); do
  if ((waited >= BUILD_WAIT)); then
    log "warning: the machine is still busy after ${BUILD_WAIT}s; measuring anyway"
    BUSY_NOTE="the machine was busy with other work when the measurement began"
    break
  fi
  if ((waited == 0)); then log "waiting for a quiet machine (up to ${BUILD_WAIT}s)"; fi
  m0=$(machine_busy)
  sleep 2
  waited=$((waited + 2))
  if awk -v a="$m0" -v b="$(machine_busy)" 'BEGIN { exit !((b - a) / 2 < 0.25) }'; then
    quiet=$((quiet + 2))
  else
    quiet=0
  fi
done

# ---------------------------------------------------------------- the raw RSA signing rate
# rsa_signs: the server core's RSA-2048 signs/s now (`openssl speed`, 3 s). Sampled here and
# again before each client_credentials round, since a shared machine's speed drifts within
# minutes: the share compares the grants with the signatures of the same minutes (the median).
rsa_signs() {
  local rate
  taskset -c "$SERVER_CPU" openssl speed -seconds 3 rsa2048 >"$TMP/openssl.out" 2>/dev/null
  # OpenSSL 3.0 prints "rsa 2048 bits <sign s> <verify s> <sign/s> <verify/s>".
  rate=$(awk '/^rsa +2048 bits/ { print $6 }' "$TMP/openssl.out")
  [[ -n $rate ]] || die "could not read openssl speed's output: $(cat "$TMP/openssl.out")"
  echo "$rate"
}
log "openssl speed -seconds 3 rsa2048 on core $SERVER_CPU"
RSA_RUNS=("$(rsa_signs)")
log "RSA-2048 signs/s on one core: ${RSA_RUNS[0]}"

# ---------------------------------------------------------------- the bcrypt rate
# bcrypt_rate: the server core's bcrypt verifications/s now, at the idp's cost (10), for 3 s:
# the ceiling of a login, which checks one password. Sampled here and before each login round,
# as the RSA rate is, for the same reason.
bcrypt_rate() {
  taskset -c "$SERVER_CPU" "$BENCH_LOAD" bcrypt 3 2>"$TMP/bcrypt.err" || die "bench_load bcrypt: $(cat "$TMP/bcrypt.err")"
}
log "bcrypt (cost 10) verifications/s on core $SERVER_CPU"
BCRYPT_RUNS=("$(bcrypt_rate)")
log "bcrypt verifications/s on one core: ${BCRYPT_RUNS[0]}"

# ---------------------------------------------------------------- the servers
start_gatehouse() {
  local data=$1 pin=$2
  mkdir -p "$data"
  local -a cmd=("$GATEHOUSE" idp --tenant "$ROOT/examples/cms-tenant/tenant.yaml"
    --keywords "$ROOT/examples/cms-tenant/dev.env" --users "$ROOT/examples/cms-tenant/users.json"
    --users-connection dev-users --database "sqlite://$data/gatehouse.db" --data "$data"
    --listen "127.0.0.1:$GH_PORT" --public-url "http://127.0.0.1:$GH_PORT/")
  if [[ -n $pin ]]; then cmd=(taskset -c "$pin" "${cmd[@]}"); fi
  # Default logging (one JSON line per request), into a file as a service manager would.
  "${cmd[@]}" >"$data/gatehouse.log" 2>&1 &
  GH_PID=$!
  wait_http "http://127.0.0.1:$GH_PORT/healthz" "$GH_PID" || die "gatehouse did not start: $(tail -5 "$data/gatehouse.log")"
}

GH="http://127.0.0.1:$GH_PORT"
GH_AUDIENCE="https://127.0.0.1:$GH_PORT/api/v2/"
MGMT_ID=$(env_value MGMT_CLIENT_ID)
MGMT_SECRET=$(env_value MGMT_CLIENT_SECRET)
GH_CC_BODY="grant_type=client_credentials&client_id=$MGMT_ID&client_secret=$(urlencode "$MGMT_SECRET")&audience=$(urlencode "$GH_AUDIENCE")"

# gatehouse_requests NAME: the requests of a gatehouse started as NAME (its /userinfo token from
# a password grant of the CMS client, as the example tenant allows).
gatehouse_requests() {
  local name=$1 token
  token=$(curl -sf "$GH/oauth/token" -d grant_type=password -d "client_id=$(env_value CMS_CLIENT_ID)" \
    --data-urlencode "client_secret=$(env_value CMS_CLIENT_SECRET)" \
    --data-urlencode "username=$(env_value USER_EMAIL)" --data-urlencode "password=$(env_value USER_PASSWORD)" \
    --data-urlencode "scope=openid profile email" | jget j.access_token)
  [[ -n $token && $token != undefined ]] || die "no /userinfo token from gatehouse"
  curl -sf -H "authorization: Bearer $token" "$GH/userinfo" >/dev/null || die "gatehouse /userinfo refused the token"
  PID_OF[$name]=$GH_PID
  REQ_URL[$name.client_credentials]="$GH/oauth/token" REQ_METHOD[$name.client_credentials]=POST
  REQ_BODY[$name.client_credentials]=$GH_CC_BODY REQ_AUTH[$name.client_credentials]=""
  REQ_URL[$name.jwks]="$GH/.well-known/jwks.json" REQ_METHOD[$name.jwks]=GET REQ_BODY[$name.jwks]="" REQ_AUTH[$name.jwks]=""
  REQ_URL[$name.userinfo]="$GH/userinfo" REQ_METHOD[$name.userinfo]=GET REQ_BODY[$name.userinfo]=""
  REQ_AUTH[$name.userinfo]="Bearer $token"
  REQ_URL[$name.password_realm]="$GH/oauth/token" REQ_METHOD[$name.password_realm]=POST REQ_AUTH[$name.password_realm]=""
  REQ_BODY[$name.password_realm]="grant_type=$(urlencode http://auth0.com/oauth/grant-type/password-realm)&realm=dev-users&client_id=$(env_value CMS_CLIENT_ID)&client_secret=$(urlencode "$(env_value CMS_CLIENT_SECRET)")&username=$(urlencode "$(env_value USER_EMAIL)")&password=$(urlencode "$(env_value USER_PASSWORD)")&scope=$(urlencode "openid profile email")"
}

# ---------------------------------------------------------------- /userinfo, every token new
# The idp remembers the tokens it verified (2,048, per key set): the /userinfo runs above send
# one token again and again, as a client does while its token lives. Here every call brings a
# token that memo does not hold, so each call pays the RS256 verification: FRESH_TOKENS tokens
# sent in turn. The idp cannot issue that many distinct ones quickly (its tokens are
# deterministic: one user's token differs only by the second it was issued in), so this script
# signs them itself with the idp's current key (idp's example bench_load, which opens the key,
# sealed at rest, as a node does, on a copy of the data dir): each is the password grant's
# token with an earlier `iat` (and `exp` as far after it), which the idp accepts as its own.
# oha cannot vary a header, so wrk sends them (a Lua script); the peer's /me gets a wrk run
# in the same rounds for the ratio.
FRESH_TOKENS=${FRESH_TOKENS:-3000}

# mint_tokens DATA TOKEN FILE: FRESH_TOKENS variants of TOKEN, one per line, signed with the key
# of the idp running on the data dir DATA. bench_load opens a copy (an online backup of the
# database, and the secrets key), so that nothing writes under the running idp: a node started
# on a database whose key is still clear (older builds) seals it.
mint_tokens() {
  local copy="$TMP/mint-data"
  rm -rf "$copy" && mkdir -p "$copy"
  sqlite3 "$1/gatehouse.db" ".backup '$copy/gatehouse.db'" || die "cannot copy the database of $1"
  if [[ -f $1/secrets.key ]]; then cp "$1/secrets.key" "$copy/"; fi
  "$BENCH_LOAD" mint "$copy" "sqlite://$copy/gatehouse.db" "$2" "$FRESH_TOKENS" >"$3" 2>"$TMP/mint.err" ||
    die "could not mint $FRESH_TOKENS tokens: $(cat "$TMP/mint.err")"
  rm -rf "$copy"
}

# wrk_rps SERVER_PID LUA URL: requests/s of one DURATION-long wrk run (every answer must be a 200),
# then the server's CPU share over the run.
wrk_rps() {
  local pid=$1 lua=$2 url=$3 cpu0 t0 out="$TMP/wrk-fresh.out"
  cpu0=$(cpu_secs "$pid")
  t0=$(date +%s.%N)
  taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNECTIONS" -d "${DURATION}s" -s "$lua" "$url" >"$out" 2>&1 ||
    die "wrk failed: $(cat "$out")"
  grep -q 'Non-2xx' "$out" && die "non-200 answers from $url: $(cat "$out")"
  awk -v c0="$cpu0" -v c1="$(cpu_secs "$pid")" -v t0="$t0" -v t1="$(date +%s.%N)" \
    '/^Requests\/sec:/ { rps = $2 } END { printf "%.0f %.0f\n", rps, (c1 - c0) / (t1 - t0) * 100 }' "$out"
}

measure_fresh_userinfo() {
  install_wrk
  mint_tokens "$TMP/gatehouse" "${REQ_AUTH[gatehouse.userinfo]#Bearer }" "$TMP/fresh-tokens.txt"
  log "signed $(sort -u "$TMP/fresh-tokens.txt" | wc -l) distinct /userinfo tokens"
  curl -sf -H "authorization: Bearer $(tail -1 "$TMP/fresh-tokens.txt")" "$GH/userinfo" >/dev/null ||
    die "gatehouse refused a token signed with its own key"
  cat >"$TMP/fresh.lua" <<LUA
local tokens = {}
for line in io.lines("$TMP/fresh-tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA
  cat >"$TMP/peer-me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $PEER_USER_TOKEN"
LUA
  local i gh peer busy rest
  local -a gh_runs=() peer_runs=()
  for i in $(seq 1 "$RUNS"); do
    read -r gh busy <<<"$(wrk_rps "$GH_PID" "$TMP/fresh.lua" "$GH/userinfo")"
    log "gatehouse /userinfo, every token new, run $i: $gh req/s (server CPU $busy%)"
    read -r peer rest <<<"$(wrk_rps "$PEER_PID" "$TMP/peer-me.lua" "$PEER/me")"
    log "peer /me (wrk), run $i: $peer req/s (server CPU $rest%)"
    gh_runs+=("$gh") peer_runs+=("$peer")
  done
  FRESH_GH=$(median "${gh_runs[@]}") FRESH_PEER=$(median "${peer_runs[@]}")
  FRESH_GH_RUNS=$(IFS=/; echo "${gh_runs[*]}") FRESH_PEER_RUNS=$(IFS=/; echo "${peer_runs[*]}")
}

# ---------------------------------------------------------------- full authorization-code logins
# bench/logins.mjs (node, on the load generator's core): LOGIN_CONNECTIONS logins at once, each
# a new browser doing the whole flow (authorize, the login form, the password, the code, its
# exchange), for DURATION s or LOGIN_MAX logins. The peer's flow (devInteractions: login and
# consent pages, no password to check) runs in the same rounds, for reference.

# logins_run KIND BASE PID SECS -> "logins/s p50_ms p99_ms server-CPU%"
logins_run() {
  local kind=$1 base=$2 pid=$3 secs=$4 out="$TMP/logins.out" cpu0 t0
  cpu0=$(cpu_secs "$pid")
  t0=$(date +%s.%N)
  CMS_CLIENT_ID=$(env_value CMS_CLIENT_ID) CMS_CLIENT_SECRET=$(env_value CMS_CLIENT_SECRET) \
    CMS_CALLBACK="$(env_value CMS_BASE_URL)/web-login/callback" CONNECTION=dev-users \
    USER_EMAIL=$(env_value USER_EMAIL) USER_PASSWORD=$(env_value USER_PASSWORD) \
    taskset -c "$LOAD_CPU" node "$BENCH/logins.mjs" "$kind" "$base" "$LOGIN_CONNECTIONS" "$secs" "$LOGIN_MAX" \
    >"$out" 2>&1 || die "$kind logins failed: $(tail -c 2000 "$out")"
  local busy
  busy=$(awk -v c0="$cpu0" -v c1="$(cpu_secs "$pid")" -v t0="$t0" -v t1="$(date +%s.%N)" \
    'BEGIN { printf "%.0f", (c1 - c0) / (t1 - t0) * 100 }')
  echo "$(jget '[rate(j.logins / j.secs), j.p50.toFixed(0), j.p99.toFixed(0)].join(" ")' <"$out") $busy"
}

measure_code_logins() {
  local i gh peer p50 p99 busy
  local -a gh_runs=() peer_runs=()
  logins_run gatehouse "$GH" "$GH_PID" "$WARMUP" >/dev/null
  logins_run peer "$PEER" "$PEER_PID" "$WARMUP" >/dev/null
  for i in $(seq 1 "$RUNS"); do
    BCRYPT_RUNS+=("$(bcrypt_rate)")
    read -r gh p50 p99 busy <<<"$(logins_run gatehouse "$GH" "$GH_PID" "$DURATION")"
    log "gatehouse code-flow logins, run $i: $gh/s (p50 $p50 ms, p99 $p99 ms, server CPU $busy%)"
    read -r peer p50 p99 busy <<<"$(logins_run peer "$PEER" "$PEER_PID" "$DURATION")"
    log "peer code-flow logins, run $i: $peer/s (p50 $p50 ms, p99 $p99 ms, server CPU $busy%)"
    gh_runs+=("$gh") peer_runs+=("$peer")
  done
  CODE_GH=$(median "${gh_runs[@]}") CODE_PEER=$(median "${peer_runs[@]}")
  CODE_GH_RUNS=$(IFS=/; echo "${gh_runs[*]}") CODE_PEER_RUNS=$(IFS=/; echo "${peer_runs[*]}")
}

log "gatehouse and oidc-provider $PEER_VERSION on core $SERVER_CPU (taking turns), $LOADGEN on core $LOAD_CPU"
start_gatehouse "$TMP/gatehouse" "$SERVER_CPU"
GH_RSS_START=$(rss_kb "$GH_PID")
gatehouse_requests gatehouse

PEER="http://127.0.0.1:$PEER_PORT"
PEER_AUDIENCE="https://127.0.0.1:$PEER_PORT/api/v2/"
PEER_SCOPE="read:users update:users delete:users create:users read:users_app_metadata update:users_app_metadata delete:users_app_metadata create:users_app_metadata"
PEER_CC_BODY="grant_type=client_credentials&client_id=mgmt-bench-client&client_secret=mgmt-bench-secret-0123456789abcdef0123456789abcdef&resource=$(urlencode "$PEER_AUDIENCE")&scope=$(urlencode "$PEER_SCOPE")"
NODE_ENV=production taskset -c "$SERVER_CPU" node "$BENCH/peer/server.mjs" "$PEER_PORT" >"$TMP/peer.log" 2>&1 &
PEER_PID=$!
wait_http "$PEER/.well-known/openid-configuration" "$PEER_PID" || die "the peer did not start: $(tail -5 "$TMP/peer.log")"
PEER_RSS_START=$(rss_kb "$PEER_PID")
PEER_USER_TOKEN=$(node "$BENCH/peer/login.mjs" "$PEER")
curl -sf -H "authorization: Bearer $PEER_USER_TOKEN" "$PEER/me" >/dev/null || die "the peer's /me refused the token"
PID_OF[peer]=$PEER_PID
REQ_URL[peer.client_credentials]="$PEER/token" REQ_METHOD[peer.client_credentials]=POST
REQ_BODY[peer.client_credentials]=$PEER_CC_BODY REQ_AUTH[peer.client_credentials]=""
REQ_URL[peer.jwks]="$PEER/jwks" REQ_METHOD[peer.jwks]=GET REQ_BODY[peer.jwks]="" REQ_AUTH[peer.jwks]=""
REQ_URL[peer.userinfo]="$PEER/me" REQ_METHOD[peer.userinfo]=GET REQ_BODY[peer.userinfo]=""
REQ_AUTH[peer.userinfo]="Bearer $PEER_USER_TOKEN"

SAMPLE_RSA=1 measure client_credentials gatehouse peer
RSA_SIGNS=$(median "${RSA_RUNS[@]}")
RSA_SAMPLES=$(IFS=/; echo "${RSA_RUNS[*]}")
log "RSA-2048 signs/s, median of ${#RSA_RUNS[@]} samples: $RSA_SIGNS ($RSA_SAMPLES)"
top_up gatehouse "$GH/oauth/token" "$GH_CC_BODY"
top_up peer "$PEER/token" "$PEER_CC_BODY"
GH_RSS=$(rss_kb "$GH_PID")
PEER_RSS=$(rss_kb "$PEER_PID")
log "gatehouse RSS: ${GH_RSS_START} kB at start, ${GH_RSS} kB after ${TOKENS[gatehouse]} tokens"
log "peer RSS: ${PEER_RSS_START} kB at start, ${PEER_RSS} kB after ${TOKENS[peer]} tokens"
measure jwks gatehouse peer
measure userinfo gatehouse peer
measure_fresh_userinfo
# Logins: a few client connections are enough to keep bcrypt (one at a time on one core) busy;
# 32 would only queue behind it, past wrk's 2 s timeout.
CONNECTIONS=$LOGIN_CONNECTIONS measure password_realm gatehouse
measure_code_logins
BCRYPT=$(median "${BCRYPT_RUNS[@]}")
BCRYPT_SAMPLES=$(IFS=/; echo "${BCRYPT_RUNS[*]}")
log "bcrypt verifications/s, median of ${#BCRYPT_RUNS[@]} samples: $BCRYPT ($BCRYPT_SAMPLES)"
GH_RSS_END=$(rss_kb "$GH_PID")
PEER_RSS_END=$(rss_kb "$PEER_PID")
log "RSS after every request (gatehouse ${REQUESTS[gatehouse]}, peer ${REQUESTS[peer]}): gatehouse ${GH_RSS_END} kB, peer ${PEER_RSS_END} kB"
kill "$GH_PID" "$PEER_PID"
wait "$GH_PID" "$PEER_PID" 2>/dev/null || true

# ---------------------------------------------------------------- gatehouse, unpinned
log "gatehouse unpinned (both cores, shared with $LOADGEN, also unpinned): one run per endpoint"
start_gatehouse "$TMP/gatehouse-unpinned" ""
gatehouse_requests unpinned
saved_cpu=$LOAD_CPU saved_runs=$RUNS
LOAD_CPU=0-$((NCPU - 1)) RUNS=1
for endpoint in client_credentials jwks userinfo; do
  measure "$endpoint" unpinned
done
LOAD_CPU=$saved_cpu RUNS=$saved_runs
kill "$GH_PID"
wait "$GH_PID" 2>/dev/null || true

# ---------------------------------------------------------------- the table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v < t; print ok ? "met" : "**missed**" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

CC_RATIO=$(ratio "${RPS[gatehouse.client_credentials]}" "${RPS[peer.client_credentials]}")
JWKS_RATIO=$(ratio "${RPS[gatehouse.jwks]}" "${RPS[peer.jwks]}")
UI_RATIO=$(ratio "${RPS[gatehouse.userinfo]}" "${RPS[peer.userinfo]}")
RSA_SHARE=$(ratio "${RPS[gatehouse.client_credentials]}" "$RSA_SIGNS")
RSS_RATIO=$(ratio "$GH_RSS" "$PEER_RSS")
GH_RSS_MB=$(mb "$GH_RSS")

mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Gatehouse vs oidc-provider — $(date '+%F %H:%M %Z')"
  echo
  echo "Produced by \`bench/load.sh\` (see bench/README.md). Servers pinned to core $SERVER_CPU, $LOADGEN on core $LOAD_CPU;"
  echo "$RUNS runs of ${DURATION} s per endpoint after a ${WARMUP} s warm-up, $CONNECTIONS connections, HTTP/1.1 keep-alive"
  echo "on 127.0.0.1; requests/s are medians (every run in brackets); only 200 answers count."
  if ((OTHERS_MAX > 10)); then
    BUSY_NOTE="${BUSY_NOTE:+$BUSY_NOTE; }other processes took up to ${OTHERS_MAX}% of a core during a run (the servers took turns, so both bore it, but absolute figures are low)"
  fi
  if [[ -n $BUSY_NOTE ]]; then printf '\n**Note:** %s.\n' "$BUSY_NOTE"; fi
  echo
  echo "| measure | gatehouse | oidc-provider $PEER_VERSION | gatehouse / peer | target | verdict | per server CPU-second: gatehouse, peer, ratio |"
  echo "| --- | ---: | ---: | ---: | --- | --- | --- |"
  row() { # label endpoint ratio target
    echo "| $1 | ${RPS[gatehouse.$2]} [${RUNS_OF[gatehouse.$2]}] | ${RPS[peer.$2]} [${RUNS_OF[peer.$2]}] | $3× | ≥ $4× | $(verdict "$3" "$4" '>=') | ${EFF[gatehouse.$2]}, ${EFF[peer.$2]}, $(ratio "${EFF[gatehouse.$2]}" "${EFF[peer.$2]}")× |"
  }
  row "client_credentials grants/s (RS256 JWT)" client_credentials "$CC_RATIO" 1.3
  echo "| client_credentials / core's RSA-2048 signs/s ($RSA_SIGNS, median of $RSA_SAMPLES) | $(awk -v r="$RSA_SHARE" 'BEGIN { printf "%.0f%%", r * 100 }') | $(awk -v a="${RPS[peer.client_credentials]}" -v b="$RSA_SIGNS" 'BEGIN { printf "%.0f%%", a / b * 100 }') | | ≥ 85% | $(verdict "$RSA_SHARE" 0.85 '>=') | |"
  row "JWKS GETs/s" jwks "$JWKS_RATIO" 5
  row "/userinfo calls/s" userinfo "$UI_RATIO" 5
  echo "| /userinfo calls/s, every token new to the idp (wrk, $FRESH_TOKENS tokens in turn; the peer: its one token, wrk) | $FRESH_GH [$FRESH_GH_RUNS] | $FRESH_PEER [$FRESH_PEER_RUNS] | $(ratio "$FRESH_GH" "$FRESH_PEER")× | (none: shown for the cost of a first verification) | | |"
  share() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", a / b * 100 }'; }
  echo "| password-realm logins/s (\`POST /oauth/token\`, the dev user; $LOGIN_CONNECTIONS connections; the peer has no password grant) | ${RPS[gatehouse.password_realm]} [${RUNS_OF[gatehouse.password_realm]}] | | | | | ${EFF[gatehouse.password_realm]} |"
  echo "| authorization-code logins/s (authorize → login form → code → token, a new browser each, $LOGIN_CONNECTIONS at once; the peer: devInteractions, no password to check) | $CODE_GH [$CODE_GH_RUNS] | $CODE_PEER [$CODE_PEER_RUNS] | $(ratio "$CODE_GH" "$CODE_PEER")× | (none: reference) | | |"
  echo "| password-realm / core's bcrypt cost-10 verifications/s ($BCRYPT, median of $BCRYPT_SAMPLES) | $(share "${RPS[gatehouse.password_realm]}" "$BCRYPT") | | | ≥ 85% | $(verdict "$(ratio "${RPS[gatehouse.password_realm]}" "$BCRYPT")" 0.85 '>=') | |"
  echo "| authorization-code logins / core's bcrypt verifications/s | $(share "$CODE_GH" "$BCRYPT") | | | ≥ 85% | $(verdict "$(ratio "$CODE_GH" "$BCRYPT")" 0.85 '>=') | |"
  echo "| RSS after ${TOKENS[gatehouse]} / ${TOKENS[peer]} tokens (at start) | ${GH_RSS_MB} MB ($(mb "$GH_RSS_START")) | $(mb "$PEER_RSS") MB ($(mb "$PEER_RSS_START")) | ${RSS_RATIO}× | gatehouse < 40 MB | $(verdict "$GH_RSS_MB" 40 '<') | |"
  echo
  echo "RSS at the end, after every request (gatehouse ${REQUESTS[gatehouse]}, peer ${REQUESTS[peer]}, of every kind):"
  echo "gatehouse $(mb "$GH_RSS_END") MB, peer $(mb "$PEER_RSS_END") MB."
  echo
  echo "Median run, gatehouse vs peer: p99 latency (ms) client_credentials ${P99[gatehouse.client_credentials]} vs ${P99[peer.client_credentials]},"
  echo "JWKS ${P99[gatehouse.jwks]} vs ${P99[peer.jwks]}, /userinfo ${P99[gatehouse.userinfo]} vs ${P99[peer.userinfo]}, password-realm ${P99[gatehouse.password_realm]}; server CPU (100% = its core"
  echo "saturated; less means the load generator was the limit, and the last column, requests per CPU-second, tells the servers' speed apart from it) client_credentials ${BUSY[gatehouse.client_credentials]}% vs"
  echo "${BUSY[peer.client_credentials]}%, JWKS ${BUSY[gatehouse.jwks]}% vs ${BUSY[peer.jwks]}%, /userinfo ${BUSY[gatehouse.userinfo]}% vs ${BUSY[peer.userinfo]}%."
  echo
  echo "Gatehouse unpinned (both cores, shared with the load generator; one run): client_credentials"
  echo "${RPS[unpinned.client_credentials]}/s, JWKS ${RPS[unpinned.jwks]}/s, /userinfo ${RPS[unpinned.userinfo]}/s."
  echo
  tree="tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo ' + local changes')"
  if [[ -n ${GATEHOUSE_BIN:-} ]]; then tree="GATEHOUSE_BIN=$GATEHOUSE_BIN; this script's $tree"; fi
  echo "Setup: gatehouse release binary built $(date -r "$GATEHOUSE" '+%F %H:%M') ($tree),"
  echo "example tenant, SQLite file database, default logging to a file; the peer on"
  echo "node $(node --version) (NODE_ENV=production), in-memory adapter, one RSA-2048 key; load generator"
  echo "$({ "$LOADGEN" --version 2>&1 || true; } | head -1); $(openssl version); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)."
} >"$RESULTS"

echo
cat "$RESULTS"
log "written to ${RESULTS#"$ROOT"/}"
