#!/usr/bin/env bash
# What RBAC costs a login: password-realm logins/s of one `gatehouse idp` (pinned to one core)
# for an API that enforces RBAC with the `permissions` claim (`enforce_policies`,
# `access_token_authz`), against the same binary's rate for an API without RBAC, in one run.
# The dev user holds 20 roles of 25 permissions each (500) on the RBAC API, so each token asks
# the store for them. Target: RBAC on ≥ 95% of RBAC off. The two loads take turns in short
# windows, RUNS each, so that the shared machine's drift (other processes, a login being one
# bcrypt check) falls on both alike; the means of the windows are compared. The result is
# printed and appended to RESULTS.
#
# Settings (environment): RUNS=20 DURATION=3 CONNECTIONS=4 GH_PORT=3911 SERVER_CPU=0 LOAD_CPU=1
# SKIP_BUILD=0 GATEHOUSE_BIN (default <target>/release/gatehouse) RESULTS=bench/results/<date>-rbac.md
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-20}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-4}
GH_PORT=${GH_PORT:-3911}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${RESULTS:-"$ROOT/bench/results/$(date +%F)-rbac.md"}
GH="http://127.0.0.1:$GH_PORT"

log() { printf '[rbac.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-rbac-bench.XXXXXX")
# Stops what this script started (its own background jobs only).
cleanup() {
  local pid
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in taskset curl node; do command -v "$tool" >/dev/null || die "$tool is required"; done
if curl -s -o /dev/null --max-time 1 "$GH/"; then die "port $GH_PORT is taken (set GH_PORT)"; fi

if ((SKIP_BUILD == 0)); then
  log "cargo build --release -p gatehouse"
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi
GATEHOUSE=${GATEHOUSE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/gatehouse}
[[ -x $GATEHOUSE ]] || die "$GATEHOUSE missing (run without SKIP_BUILD=1)"

env_value() { grep -E "^$1=" "$ROOT/examples/cms-tenant/dev.env" | head -1 | cut -d= -f2- | sed "s/^'//; s/'\$//"; }

# The example tenant, plus an administration client granted the whole Management API (to make
# the APIs and roles).
ADMIN_ID=RbacBenchAdmin000000000000000001
ADMIN_SECRET=rbac-bench-admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz_A
MGMT_SCOPES=$(grep -oE '^    "[a-z_]+:[a-z_]+",' "$ROOT/crates/idp/src/provision.rs" | tr -d ' ",' | sed 's/^/      - /')
node - "$ROOT/examples/cms-tenant/tenant.yaml" "$TMP/tenant.yaml" <<EOF
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
let y = fs.readFileSync(src, "utf8");
const client = \`  - name: RBAC bench admin
    app_type: non_interactive
    client_id: "$ADMIN_ID"
    client_secret: "$ADMIN_SECRET"
    grant_types:
      - client_credentials
\`;
const grant = \`  - client_id: RBAC bench admin
    audience: "https://##AUTH0_DOMAIN##/api/v2/"
    scope:
$MGMT_SCOPES
\`;
y = y.replace("\nclients:\n", "\nclients:\n" + client).replace("\nclientGrants:\n", "\nclientGrants:\n" + grant);
fs.writeFileSync(dst, y);
EOF
cp "$ROOT/examples/cms-tenant/users.json" "$ROOT/examples/cms-tenant/dev.env" "$TMP/"
[[ -d $ROOT/examples/cms-tenant/actions ]] && cp -r "$ROOT/examples/cms-tenant/actions" "$TMP/"

mkdir -p "$TMP/data"
log "starting $GATEHOUSE on core $SERVER_CPU"
taskset -c "$SERVER_CPU" "$GATEHOUSE" idp --tenant "$TMP/tenant.yaml" --keywords "$TMP/dev.env" \
  --users "$TMP/users.json" --users-connection dev-users --data "$TMP/data" \
  --listen "127.0.0.1:$GH_PORT" --public-url "$GH/" >"$TMP/idp.log" 2>&1 &
GH_PID=$!
for ((i = 0; i < 600; i++)); do
  curl -sf -o /dev/null --max-time 1 "$GH/healthz" && break
  kill -0 "$GH_PID" 2>/dev/null || die "the idp stopped: $(tail -c 2000 "$TMP/idp.log")"
  sleep 0.1
done

# The two APIs (the same 500 scopes, RBAC off and on) and the roles, through the Management API
# as an operator makes them.
TOKEN=$(curl -sf "$GH/oauth/token" -H 'content-type: application/json' \
  -d "{\"grant_type\":\"client_credentials\",\"client_id\":\"$ADMIN_ID\",\"client_secret\":\"$ADMIN_SECRET\",\"audience\":\"https://127.0.0.1:$GH_PORT/api/v2/\"}" |
  node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
api() { curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
SCOPES=$(for i in $(seq 0 499); do printf '{"value":"p:%03d"},' "$i"; done)
api "$GH/api/v2/resource-servers" -d "{\"identifier\":\"https://off.bench/\",\"scopes\":[${SCOPES%,}]}" >/dev/null
api "$GH/api/v2/resource-servers" -d "{\"identifier\":\"https://on.bench/\",\"scopes\":[${SCOPES%,}],\"enforce_policies\":true,\"token_dialect\":\"access_token_authz\"}" >/dev/null
USER_ID=$(api "$GH/api/v2/users-by-email?email=$(env_value USER_EMAIL)" | node -pe 'JSON.parse(require("fs").readFileSync(0))[0].user_id')
ROLES=()
for r in $(seq 0 19); do
  role=$(api "$GH/api/v2/roles" -d "{\"name\":\"bench $r\"}" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
  perms=$(for p in $(seq 0 24); do printf '{"resource_server_identifier":"https://on.bench/","permission_name":"p:%03d"},' $((r * 25 + p)); done)
  api "$GH/api/v2/roles/$role/permissions" -d "{\"permissions\":[${perms%,}]}" >/dev/null
  ROLES+=("\"$role\"")
done
api "$GH/api/v2/users/$(node -pe 'encodeURIComponent(process.argv[1])' "$USER_ID")/roles" \
  -d "{\"roles\":[$(IFS=,; echo "${ROLES[*]}")]}" >/dev/null

# One load: CONNECTIONS loops of password-realm grants for DURATION s, on the load core.
# Prints logins/s; any answer but 200 fails the run.
load() {
  local audience=$1 secs=$2
  taskset -c "$LOAD_CPU" node - "$GH" "$audience" "$secs" "$CONNECTIONS" \
    "$(env_value CMS_CLIENT_ID)" "$(env_value CMS_CLIENT_SECRET)" "$(env_value USER_EMAIL)" "$(env_value USER_PASSWORD)" <<'EOF'
const [gh, audience, secs, conns, id, secret, user, password] = process.argv.slice(2);
const body = new URLSearchParams({
  grant_type: "http://auth0.com/oauth/grant-type/password-realm", realm: "dev-users", client_id: id,
  client_secret: secret, username: user, password, audience, scope: "openid p:000 p:250 p:499",
}).toString();
const end = Date.now() + Number(secs) * 1000;
let ok = 0;
const worker = async () => {
  while (Date.now() < end) {
    const res = await fetch(`${gh}/oauth/token`, { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded" } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
    if (audience.includes("on.") && !JSON.parse(text).access_token) throw new Error(text);
    ok++;
  }
};
const start = Date.now();
await Promise.all(Array.from({ length: Number(conns) }, worker));
console.log((ok / ((Date.now() - start) / 1000)).toFixed(2));
EOF
}

# The RBAC API's token really carries what the user holds.
check=$(curl -sf "$GH/oauth/token" --data-urlencode "grant_type=http://auth0.com/oauth/grant-type/password-realm" \
  -d realm=dev-users -d "client_id=$(env_value CMS_CLIENT_ID)" --data-urlencode "client_secret=$(env_value CMS_CLIENT_SECRET)" \
  --data-urlencode "username=$(env_value USER_EMAIL)" --data-urlencode "password=$(env_value USER_PASSWORD)" \
  -d audience=https://on.bench/ --data-urlencode "scope=openid p:000 p:499 nope")
node -e 'const t = JSON.parse(process.argv[1]); const c = JSON.parse(Buffer.from(t.access_token.split(".")[1], "base64url"));
  if (c.permissions.length !== 500 || c.scope !== "openid p:000 p:499") throw new Error(JSON.stringify(c).slice(0, 300));' "$check"

mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
load https://off.bench/ 2 >/dev/null
load https://on.bench/ 2 >/dev/null
OFF=() ON=()
for ((i = 1; i <= RUNS; i++)); do
  # Each goes first every other round, so neither always follows the other.
  if ((i % 2)); then
    OFF+=("$(load https://off.bench/ "$DURATION")")
    ON+=("$(load https://on.bench/ "$DURATION")")
  else
    ON+=("$(load https://on.bench/ "$DURATION")")
    OFF+=("$(load https://off.bench/ "$DURATION")")
  fi
  log "run $i: RBAC off ${OFF[-1]}/s, RBAC on ${ON[-1]}/s"
done
off=$(mean "${OFF[@]}")
on=$(mean "${ON[@]}")
ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.1f", a / b * 100 }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 95) ? "pass" : "FAIL" }')
mkdir -p "$(dirname "$RESULTS")"
{
  echo "## RBAC on vs off, password-realm logins/s ($(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD))"
  echo
  echo "One \`gatehouse idp\` on core $SERVER_CPU, $CONNECTIONS connections, $RUNS windows of ${DURATION}s each, taking turns; the user holds 20 roles × 25 permissions on the RBAC API."
  echo
  echo "| load | logins/s (mean of the windows) | windows | target | verdict |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| RBAC off (\`access_token\`) | $off | $(IFS=/; echo "${OFF[*]}") | | |"
  echo "| RBAC on (\`enforce_policies\`, \`access_token_authz\`, 500 permissions) | $on | $(IFS=/; echo "${ON[*]}") | ≥ 95% of off | $ratio% $verdict |"
  echo
} | tee -a "$RESULTS"
