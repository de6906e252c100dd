#!/usr/bin/env bash
# local_demo_test.sh BINARY: the README's first command, deploy/local/run.sh, as a newcomer runs
# it (with --prometheus, so the demo Prometheus and the shipped rules are covered too), on ports
# of its own: Postfix is greeted and probed, the exporter's /metrics has the target, Prometheus
# scrapes it (up 1, smtp_probe_success 1) and has loaded the recording rules and alerts of
# deploy/prometheus; then Ctrl-C (SIGINT to the script's process group, as a terminal sends it)
# stops the exporter (status 0), Postfix and Prometheus.
# Exit 77 if prometheus is missing (tests/support/install_deps.sh test installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: local_demo_test.sh path/to/smtp_exporter}
if ! command -v prometheus >/dev/null; then
  echo "SKIP: prometheus is not installed ($INSTALL_HINT)" >&2
  exit 77
fi
test_init local_demo 120
require_binary "$BINARY"
BINARY=$(realpath "$BINARY")

smtp_port=$(pick_port)
exporter_port=$(pick_port)
prometheus_port=$(pick_port)
demo_log=$WORKDIR/run.log
# Its own process group (setsid), as a shell gives a foreground job: the SIGINT below reaches
# the script and the exporter it runs in the foreground, as Ctrl-C does.
SKIP_DEPS=1 SMTP_EXPORTER_BINARY=$BINARY SMTP_DEMO_DIR=$WORKDIR/demo SMTP_DEMO_PORT=$smtp_port \
  SMTP_EXPORTER_LISTEN=127.0.0.1:$exporter_port SMTP_DEMO_PROMETHEUS_PORT=$prometheus_port \
  SMTP_DEMO_SCRAPE_INTERVAL=1s setsid "$REPO_ROOT/deploy/local/run.sh" --prometheus \
  >"$demo_log" 2>&1 &
demo_pid=$!
_LOGS+=("$demo_log")
_CLEANUP+=("kill -TERM -- -$demo_pid 2>/dev/null; wait $demo_pid 2>/dev/null")

_target_up() {
  kill -0 "$demo_pid" 2>/dev/null || fail "run.sh exited early"
  curl -fsS --max-time 2 "http://127.0.0.1:$exporter_port/metrics" 2>/dev/null |
    grep -q '^smtp_probe_success{target="local-postfix",env="demo"} 1$'
}
wait_until 60 "the demo's exporter reports local-postfix as up" _target_up
log "ok: run.sh printed: $(grep -m1 'Prometheus:' "$demo_log" | sed 's/^ *//')"
grep -q "Metrics: *http://127.0.0.1:$exporter_port/metrics" "$demo_log" ||
  fail "run.sh did not print the metrics URL"

_prometheus_has() { [[ $(prom_query "$prometheus_port" "$1" 2>/dev/null) == "$2" ]]; }
wait_until 30 "Prometheus: up{job=\"smtp_exporter\"} == 1" \
  _prometheus_has 'up{job="smtp_exporter"}' 1
wait_until 30 "Prometheus: smtp_probe_success{target=\"local-postfix\"} == 1" \
  _prometheus_has 'smtp_probe_success{target="local-postfix"}' 1
rules=$(curl -fsS "http://127.0.0.1:$prometheus_port/api/v1/rules")
alerts=$(jq '[.data.groups[].rules[] | select(.type == "alerting")] | length' <<<"$rules")
recording=$(jq '[.data.groups[].rules[] | select(.type == "recording")] | length' <<<"$rules")
((alerts > 0 && recording > 0)) ||
  fail "Prometheus loaded $alerts alerting and $recording recording rules: expected both"
log "ok: Prometheus loaded $recording recording rules and $alerts alerts"

kill -INT -- "-$demo_pid"
rc=0
wait "$demo_pid" || rc=$?
[[ $rc == 0 ]] || fail "run.sh exited with status $rc after Ctrl-C: expected 0"
for port in "$smtp_port" "$exporter_port" "$prometheus_port"; do
  _closed() { ! port_open 127.0.0.1 "$1"; }
  wait_until 10 "127.0.0.1:$port closed after Ctrl-C" _closed "$port"
done
log "ok: Ctrl-C stopped the exporter (status 0), Postfix and Prometheus"
