#!/usr/bin/env bash
# client_credentials/s of one gatehouse binary (argument 1) with the tenant log on and off, two
# rounds of 5 s each, server pinned to core 0 and wrk to core 1, RSS after each. Targets
# 127.0.0.1 only and stops by itself. Usage: bench/logs-ab.sh target/release/gatehouse
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); P=${PORT:-3950}
env_value() { sed -n "s/^$1=//p" "$ROOT/examples/cms-tenant/dev.env" | sed "s/^'\(.*\)'$/\1/"; }
ID=$(env_value MGMT_CLIENT_ID); SECRET=$(env_value MGMT_CLIENT_SECRET)
enc() { node -p 'encodeURIComponent(process.argv[1])' "$1"; }
BODY="grant_type=client_credentials&client_id=$ID&client_secret=$(enc "$SECRET")&audience=$(enc "https://127.0.0.1:$P/api/v2/")"
d0=$(mktemp -d); trap 'rm -rf "$d0"' EXIT
cat > "$d0/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
for round in 1 2; do
for mode in on off; do
  d=$(mktemp -d); extra=""; [ $mode = off ] && extra="--no-tenant-logs"
  taskset -c 0 $1 idp --tenant $ROOT/examples/cms-tenant/tenant.yaml --keywords $ROOT/examples/cms-tenant/dev.env --database sqlite://$d/g.db --data $d --listen 127.0.0.1:$P --public-url http://127.0.0.1:$P/ $extra > $d/log 2>&1 &
  pid=$!
  for i in $(seq 1 100); do curl -sf http://127.0.0.1:$P/readyz >/dev/null && break; sleep 0.2; done
  taskset -c 1 wrk -t1 -c32 -d2s -s "$d0/cc.lua" http://127.0.0.1:$P/oauth/token >/dev/null 2>&1
  r=$(taskset -c 1 wrk -t1 -c32 -d5s -s "$d0/cc.lua" http://127.0.0.1:$P/oauth/token 2>&1 | awk '/Requests\/sec/ {print $2}')
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "round $round logs $mode: $r req/s, RSS ${rss} kB"
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
done; done
