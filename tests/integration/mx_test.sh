#!/usr/bin/env bash
# mx_test.sh BINARY: MX targets against a real DNS server (dnsmasq on 127.0.0.1) and a real
# Postfix. The test zone has a domain with two MX hosts of different preference (both 127.0.0.1),
# a null MX (RFC 7505), a domain with an A record and no MX (its own implicit MX, RFC 5321 §5.1)
# and a name that does not exist. Checks the per-host series with their `mx` label, the MX
# gauges and the outcomes null_mx and resolve_error; then changes the records (one MX host
# replaced by another) and waits for the endpoints to follow; then a reload with another
# mx_refresh keeps the counters of the endpoints that stay.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: mx_test.sh path/to/smtp_exporter}
test_init mx 240
require_binary "$BINARY"

postfix_port=$(pick_port)
dns_port=$(pick_dns_port)
start_postfix "$WORKDIR" "$postfix_port"

zone=test.local
# records_v1 / records_v2: the zone before and after mx2 is replaced by mx3.
common_records=(
  'host-record=mx1.test.local,127.0.0.1'
  'host-record=mx2.test.local,127.0.0.1'
  'host-record=mx3.test.local,127.0.0.1'
  'mx-host=null.test.local,.,0'
  'host-record=nomx.test.local,127.0.0.1'
)
records_v1=("${common_records[@]}" 'mx-host=mx.test.local,mx1.test.local,10'
  'mx-host=mx.test.local,mx2.test.local,20')
records_v2=("${common_records[@]}" 'mx-host=mx.test.local,mx1.test.local,10'
  'mx-host=mx.test.local,mx3.test.local,30')
start_dns "$dns_port" "$zone" "${records_v1[@]}"

log "--- the DNS server answers as this test assumes"
assert_eq $'NOERROR\n10 mx1.test.local.\n20 mx2.test.local.' "$(dns_query MX mx.test.local)" \
  "MX of mx.test.local"
assert_eq $'NOERROR\n0 .' "$(dns_query MX null.test.local)" "MX of null.test.local (null MX)"
assert_eq NOERROR "$(dns_query MX nomx.test.local)" "MX of nomx.test.local (none)"
assert_eq $'NOERROR\n127.0.0.1' "$(dns_query A nomx.test.local)" "A of nomx.test.local"
assert_eq NXDOMAIN "$(dns_query MX nonexistent.test.local)" "MX of nonexistent.test.local"
for host in mx1 mx2 mx3; do
  assert_eq $'NOERROR\n127.0.0.1' "$(dns_query A "$host.test.local")" "A of $host.test.local"
done

config=$WORKDIR/smtp_exporter.yml
# write_config MULTI_REFRESH: the exporter's config; MULTI_REFRESH is target multi's mx_refresh.
write_config() {
  cat >"$config.new" <<EOF
defaults:
  interval: 2s
  timeout: 1500ms
  helo_name: monitor.test.local
dns:
  servers: ["127.0.0.1:$dns_port"]
targets:
  - name: multi
    mx: mx.test.local
    port: $postfix_port
    mx_refresh: $1
  - name: nullmx
    mx: null.test.local
    port: $postfix_port
    mx_refresh: 2s
  - name: implicit
    mx: nomx.test.local
    port: $postfix_port
    mx_refresh: 2s
  - name: nxdomain
    mx: nonexistent.test.local
    port: $postfix_port
    mx_refresh: 2s
EOF
  mv "$config.new" "$config"
}
write_config 2s
start_exporter "$BINARY" "$config"

s=$WORKDIR/metrics.txt
take_scrape() { scrape "$EXPORTER_PORT" >"$s.new" && mv "$s.new" "$s"; }
# mx_series FILE HOST: the series lines with mx="HOST".
mx_series() { grep -v '^#' "$1" | grep -E "[{,]mx=\"${2//./\\.}\"[,}]" || true; }

_first_round() {
  take_scrape &&
    has_series "$s" 'smtp_last_probe_timestamp_seconds{target="multi",mx="mx1.test.local"}' &&
    has_series "$s" 'smtp_last_probe_timestamp_seconds{target="multi",mx="mx2.test.local"}' &&
    has_series "$s" 'smtp_last_probe_timestamp_seconds{target="implicit",mx="nomx.test.local"}' &&
    has_series "$s" 'smtp_probes_total{target="nullmx",result="null_mx"}' &&
    has_series "$s" 'smtp_probes_total{target="nxdomain",result="resolve_error"}'
}
wait_until 30 "a probe of each MX host and an outcome for nullmx and nxdomain" _first_round

log "--- target multi: two MX hosts, one endpoint each"
for host in mx1 mx2; do
  sel="target=\"multi\",mx=\"$host.test.local\""
  assert_metric "$s" "smtp_probe_success{$sel}" 1
  assert_metric "$s" "smtp_probes_total{$sel,result=\"success\"}" '>=' 1
  assert_metric "$s" "smtp_banner_info{$sel,hostname=\"mx.test.local\",software=\"postfix\"}" 1
  assert_metric "$s" "smtp_quit_code{$sel}" 221
  # Each probe looks the MX host's address up (phase resolve) through the configured server.
  assert_metric "$s" "smtp_phase_seconds{$sel,phase=\"resolve\"}" '>' 0
done
assert_series_count "$s" 'smtp_probe_success{target="multi"}' 2
assert_metric "$s" 'smtp_mx_hosts{target="multi"}' 2
assert_series_count "$s" 'smtp_mx_preference{target="multi"}' 2
assert_metric "$s" 'smtp_mx_preference{target="multi",mx="mx1.test.local"}' 10
assert_metric "$s" 'smtp_mx_preference{target="multi",mx="mx2.test.local"}' 20
assert_metric "$s" 'smtp_exporter_targets' 4

log "--- target nullmx: null MX, nothing to probe"
assert_metric "$s" 'smtp_probes_total{target="nullmx",result="null_mx"}' '>=' 1
assert_metric "$s" 'smtp_probe_success{target="nullmx"}' 0
assert_metric "$s" 'smtp_mx_hosts{target="nullmx"}' 0
assert_no_series "$s" 'smtp_mx_preference{target="nullmx"}'
assert_no_series "$s" 'smtp_probes_total{target="nullmx",result="success"}'
if grep -v '^#' "$s" | grep -E '[{,]target="nullmx"[,}]' | grep -q '[{,]mx="'; then
  fail "target nullmx has series with an mx label:"$'\n'"$(grep -E 'target="nullmx"' "$s")"
fi

log "--- target nxdomain: the domain does not exist"
assert_metric "$s" 'smtp_probes_total{target="nxdomain",result="resolve_error"}' '>=' 1
assert_metric "$s" 'smtp_probe_success{target="nxdomain"}' 0
assert_no_series "$s" 'smtp_mx_preference{target="nxdomain"}'
assert_no_series "$s" 'smtp_probes_total{target="nxdomain",result="success"}'

log "--- target implicit: no MX records, the domain is its own MX"
assert_series_count "$s" 'smtp_probe_success{target="implicit"}' 1
assert_metric "$s" 'smtp_probe_success{target="implicit",mx="nomx.test.local"}' 1
assert_metric "$s" 'smtp_mx_hosts{target="implicit"}' 1
assert_metric "$s" 'smtp_mx_preference{target="implicit",mx="nomx.test.local"}' 0

log "--- promtool check metrics"
promtool check metrics <"$s" >"$WORKDIR/promtool.out" 2>&1 ||
  fail "promtool check metrics rejects the scrape:"$'\n'"$(cat "$WORKDIR/promtool.out")"
log "ok: promtool check metrics passes"

log "--- the log names the outcome of the failed lookups"
_lookup_failure_logged() {
  grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -F "target=$1 " |
    grep -F "reason=$2 " | grep -qF "phase=resolve "
}
wait_until 5 "a log line: probe failed target=nullmx reason=null_mx phase=resolve" \
  _lookup_failure_logged nullmx null_mx
wait_until 5 "a log line: probe failed target=nxdomain reason=resolve_error phase=resolve" \
  _lookup_failure_logged nxdomain resolve_error
log "ok: $(grep -m1 -F 'target=nullmx ' "$EXPORTER_LOG")"
log "ok: $(grep -m1 -F 'target=nxdomain ' "$EXPORTER_LOG")"

log "--- the records change: mx2 (20) is replaced by mx3 (30)"
mx1_success_before=$(metric_value "$s" \
  'smtp_probes_total{target="multi",mx="mx1.test.local",result="success"}')
stop_dns
start_dns "$dns_port" "$zone" "${records_v2[@]}"
assert_eq $'NOERROR\n10 mx1.test.local.\n30 mx3.test.local.' "$(dns_query MX mx.test.local)" \
  "MX of mx.test.local after the change"
_followed() {
  take_scrape &&
    [[ $(metric_value "$s" 'smtp_probe_success{target="multi",mx="mx3.test.local"}') == 1 ]] &&
    [[ $(metric_value "$s" 'smtp_probe_success{target="multi",mx="mx1.test.local"}') == 1 ]] &&
    [[ -z $(mx_series "$s" mx2.test.local) ]] &&
    [[ $(metric_count "$s" 'smtp_probe_success{target="multi"}') == 2 ]]
}
wait_until 30 "endpoint mx3.test.local probed with success, no series with mx2.test.local" \
  _followed
assert_metric "$s" 'smtp_mx_hosts{target="multi"}' 2
assert_series_count "$s" 'smtp_mx_preference{target="multi"}' 2
assert_metric "$s" 'smtp_mx_preference{target="multi",mx="mx1.test.local"}' 10
assert_metric "$s" 'smtp_mx_preference{target="multi",mx="mx3.test.local"}' 30
assert_metric "$s" 'smtp_probes_total{target="multi",mx="mx3.test.local",result="success"}' '>=' 1
# mx1 stayed: its counters go on from where they were.
assert_metric "$s" 'smtp_probes_total{target="multi",mx="mx1.test.local",result="success"}' \
  '>=' "$mx1_success_before"
assert_series_count "$s" 'smtp_probe_success{target="multi"}' 2
# The other targets are as before.
assert_metric "$s" 'smtp_probe_success{target="implicit",mx="nomx.test.local"}' 1
assert_metric "$s" 'smtp_mx_hosts{target="implicit"}' 1
assert_metric "$s" 'smtp_probe_success{target="nullmx"}' 0
log "ok: $(grep -F 'msg="MX hosts changed"' "$EXPORTER_LOG" | grep -F 'target=multi ' | tail -n 1)"

log "--- a reload with another mx_refresh keeps the counters of the endpoints that stay"
# Wait for a moment when both endpoints have a fresh probe behind them, then note the counters.
_both_probed_again() {
  take_scrape &&
    (($(metric_sum "$s" 'smtp_probes_total{target="multi",mx="mx3.test.local"}') >= 2))
}
wait_until 20 "a second probe of mx3.test.local" _both_probed_again
declare -A before
for host in mx1 mx3; do
  sel="target=\"multi\",mx=\"$host.test.local\""
  before[$host]=$(metric_sum "$s" "smtp_probes_total{$sel}")
  before[$host.hist]=$(metric_value "$s" "smtp_greeting_duration_seconds_count{$sel}")
  log "before the reload: $host: ${before[$host]} probes, histogram count ${before[$host.hist]}"
done
write_config 3s
assert_eq 200 "$(http_status "$EXPORTER_URL/-/reload" -X POST)" "POST /-/reload (mx_refresh 3s)"
take_scrape
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 1
for host in mx1 mx3; do
  sel="target=\"multi\",mx=\"$host.test.local\""
  # Summed over results, as before the reload: a probe that met the DNS server's restart above
  # counts under resolve_timeout, a series of its own.
  after=$(metric_sum "$s" "smtp_probes_total{$sel}")
  num_cmp "$after" '>=' "${before[$host]}" ||
    fail "$host: $after probes after the reload, ${before[$host]} before: its counters restarted"
  log "ok: $host: $after probes after the reload (>= ${before[$host]} before)"
  assert_metric "$s" "smtp_greeting_duration_seconds_count{$sel}" '>=' "${before[$host.hist]}"
done
assert_metric "$s" 'smtp_mx_hosts{target="multi"}' 2
_probed_after_reload() {
  take_scrape &&
    num_cmp "$(metric_sum "$s" 'smtp_probes_total{target="multi",mx="mx1.test.local"}')" '>' \
      "${before[mx1]}" &&
    num_cmp "$(metric_sum "$s" 'smtp_probes_total{target="multi",mx="mx3.test.local"}')" '>' \
      "${before[mx3]}"
}
wait_until 15 "both endpoints of multi probed again after the reload" _probed_after_reload
for host in mx1 mx3; do
  sel="target=\"multi\",mx=\"$host.test.local\""
  assert_metric "$s" "smtp_probe_success{$sel}" 1
  assert_metric "$s" "smtp_greeting_duration_seconds_count{$sel}" '>' "${before[$host.hist]}"
done
[[ -z $(mx_series "$s" mx2.test.local) ]] ||
  fail "series with mx=\"mx2.test.local\" came back:"$'\n'"$(mx_series "$s" mx2.test.local)"
assert_series_count "$s" 'smtp_probe_success{target="multi"}' 2
assert_metric "$s" 'smtp_mx_hosts{target="multi"}' 2

log "--- what the exporter saw (figures for the record)"
for sel in 'target="multi",mx="mx1.test.local"' 'target="multi",mx="mx3.test.local"' \
  'target="implicit",mx="nomx.test.local"'; do
  log "$sel: greeting $(metric_value "$s" "smtp_greeting_seconds{$sel}")s, resolve" \
    "$(metric_value "$s" "smtp_phase_seconds{$sel,phase=\"resolve\"}")s, results:" \
    "$(metric_lines "$s" "smtp_probes_total{$sel}" | sed 's/.*result="\([^"]*\)"} /\1=/' |
      paste -sd, -)"
done
for t in nullmx nxdomain; do
  log "$t: $(metric_lines "$s" "smtp_probes_total{target=\"$t\"}" | paste -sd ' ' -)"
done

log "mx_test: $_ASSERTIONS assertions passed"
