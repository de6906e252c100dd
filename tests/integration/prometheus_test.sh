#!/usr/bin/env bash
# prometheus_test.sh BINARY: a real Prometheus scrapes the exporter, which probes a real Postfix;
# the query API must return smtp_probe_success{target="postfix"} == 1 and Prometheus must report
# the scrape healthy (a malformed exposition shows up there as a scrape error).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: prometheus_test.sh path/to/smtp_exporter}
test_init prometheus 180
require_binary "$BINARY"

postfix_port=$(pick_port)
prometheus_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 2s
  timeout: 1s
  helo_name: monitor.test.local
targets:
  - name: postfix
    address: 127.0.0.1:$postfix_port
    labels: {team: mail}
EOF
start_exporter "$BINARY" "$config"
start_prometheus "$WORKDIR" "$prometheus_port" "127.0.0.1:$EXPORTER_PORT"

# The first sample lands a few seconds after Prometheus starts: poll the query API.
_prometheus_sees_success() {
  [[ $(prom_query "$prometheus_port" 'smtp_probe_success{target="postfix"}') == 1 ]]
}
wait_until 30 'Prometheus to read smtp_probe_success{target="postfix"} == 1' \
  _prometheus_sees_success
log "ok: Prometheus reads smtp_probe_success{target=\"postfix\"} == 1"

assert_eq 1 "$(prom_query "$prometheus_port" 'up{job="smtp_exporter"}')" 'up{job="smtp_exporter"}'
assert_eq 1 "$(prom_query "$prometheus_port" \
  'smtp_probe_success{target="postfix",team="mail"}')" "the target's static label team=mail"
assert_eq 1 "$(prom_query "$prometheus_port" \
  'smtp_banner_info{target="postfix",hostname="mx.test.local",software="postfix"}')" \
  "smtp_banner_info in Prometheus"
assert_eq 221 "$(prom_query "$prometheus_port" 'smtp_quit_code{target="postfix"}')" \
  "smtp_quit_code in Prometheus"
count=$(prom_query "$prometheus_port" 'count({job="smtp_exporter",__name__=~"smtp_.*"})')
num_cmp "$count" '>=' 10 || fail "expected >= 10 smtp_* series in Prometheus, got '$count'"
log "ok: Prometheus holds $count smtp_* series"

# Prometheus's own view of the scrape: healthy, no error.
targets=$(curl -sS --max-time 5 "http://127.0.0.1:$prometheus_port/api/v1/targets")
health=$(jq -r '.data.activeTargets[] | select(.labels.job == "smtp_exporter") | .health' \
  <<<"$targets")
last_error=$(jq -r '.data.activeTargets[] | select(.labels.job == "smtp_exporter") | .lastError' \
  <<<"$targets")
assert_eq up "$health" "Prometheus target health"
assert_eq "" "$last_error" "Prometheus target lastError"

log "prometheus_test: $_ASSERTIONS assertions passed"
