#!/usr/bin/env bash
# What the tenant log costs: requests/s of one gatehouse binary (argument 1) with the log on
# and off, alternating (on, off, on, off, …) so that drift on a shared machine weighs on both.
# Server pinned to core 0, wrk to core 1, RSS after each window. Targets 127.0.0.1 only and
# stops by itself. Usage: bench/logs-ab.sh target/release/gatehouse
#
# MODE=cc (default): client_credentials grants, 32 connections, ROUNDS=2 windows of SECS=5 s
#   (each after a 2 s warm-up).
# MODE=password: password-realm grants (the dev user: one bcrypt check each and the post-login
#   Action), 4 connections.
# The last line is the ratio of the medians, on / off.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); P=${PORT:-3950}
MODE=${MODE:-cc}; ROUNDS=${ROUNDS:-2}; SECS=${SECS:-5}
env_value() { sed -n "s/^$1=//p" "$ROOT/examples/cms-tenant/dev.env" | sed "s/^'\(.*\)'$/\1/"; }
enc() { node -p 'encodeURIComponent(process.argv[1])' "$1"; }
case $MODE in
  cc)
    BODY="grant_type=client_credentials&client_id=$(env_value MGMT_CLIENT_ID)&client_secret=$(enc "$(env_value MGMT_CLIENT_SECRET)")&audience=$(enc "https://127.0.0.1:$P/api/v2/")"
    CONNECTIONS=32 ;;
  password)
    BODY="grant_type=$(enc http://auth0.com/oauth/grant-type/password-realm)&realm=dev-users&client_id=$(env_value CMS_CLIENT_ID)&client_secret=$(enc "$(env_value CMS_CLIENT_SECRET)")&username=$(enc "$(env_value USER_EMAIL)")&password=$(enc "$(env_value USER_PASSWORD)")&scope=$(enc "openid profile email")"
    CONNECTIONS=4 ;;
  *) echo "MODE must be cc or password" >&2; exit 2 ;;
esac
d0=$(mktemp -d); trap 'rm -rf "$d0"' EXIT
cat > "$d0/req.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
: > "$d0/on"; : > "$d0/off"
for round in $(seq 1 "$ROUNDS"); do
for mode in on off; do
  d=$(mktemp -d); extra=""; [ $mode = off ] && extra="--no-tenant-logs"
  taskset -c 0 $1 idp --tenant $ROOT/examples/cms-tenant/tenant.yaml --keywords $ROOT/examples/cms-tenant/dev.env --users $ROOT/examples/cms-tenant/users.json --users-connection dev-users --database sqlite://$d/g.db --data $d --listen 127.0.0.1:$P --public-url http://127.0.0.1:$P/ $extra > $d/log 2>&1 &
  pid=$!
  for i in $(seq 1 100); do curl -sf http://127.0.0.1:$P/readyz >/dev/null && break; sleep 0.2; done
  taskset -c 1 wrk -t1 -c$CONNECTIONS -d2s -s "$d0/req.lua" http://127.0.0.1:$P/oauth/token >/dev/null 2>&1
  out=$(taskset -c 1 wrk -t1 -c$CONNECTIONS -d${SECS}s -s "$d0/req.lua" http://127.0.0.1:$P/oauth/token 2>&1)
  r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "round $round logs $mode: $r req/s, RSS ${rss} kB${bad:+, $bad non-2xx answers}"
  echo "$r" >> "$d0/$mode"
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
done; done
median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
on=$(median "$d0/on"); off=$(median "$d0/off")
awk -v on="$on" -v off="$off" -v m="$MODE" 'BEGIN { printf "%s: median on %.0f, off %.0f req/s: on/off = %.1f%%\n", m, on, off, 100 * on / off }'
