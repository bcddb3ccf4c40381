#!/usr/bin/env bash
# The fault harness's long form (crates/gatehouse/tests/it/faults/under_load.rs): three idp
# nodes on a PostgreSQL of its own, two auth0-client instances on a Redis of its own, 8 load
# workers, each fault held longer (a node down 5 s, PostgreSQL frozen 10 s) and 20 s of load
# after each recovery. Writes the figures per fault (requests, clean errors, hangs, wrong
# answers, lost and duplicate writes, recovery time; reset mails acknowledged, delivered and
# delivered twice; tenant-log events lost) to bench/results/faults-DATE.md. Touches
# no shared server: everything it starts is on its own ports and stops with it.
# Usage: bench/faults.sh   (about 2.5 minutes after the build)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/bench/results/faults-$(date -u +%Y-%m-%d).md"
table=$(mktemp); trap 'rm -f "$table"' EXIT
cargo build -p gatehouse --bins --tests
GATEHOUSE_FAULTS_LONG=1 GATEHOUSE_FAULTS_RESULTS="$table" \
  cargo test -p gatehouse --test it -- faults::under_load --nocapture --test-threads 1
{
  echo "# Fault harness, long form ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, debug build)"
  echo
  cat "$table"
} > "$out"
echo "wrote $out"
