#!/usr/bin/env bash
# mta_test.sh BINARY: the exporter probing a real Postfix and a real Exim on loopback.
# Checks the per-target metrics (README.md, Metrics) against what the two servers really say, the
# exposition (promtool), that Exim's changing banner keeps one smtp_banner_info series, and gzip.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: mta_test.sh path/to/smtp_exporter}
test_init mta 240
require_binary "$BINARY"

postfix_port=$(pick_port)
exim_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port"
start_exim "$WORKDIR" "$exim_port"

# The peers are what this test assumes (else a harness fault would look like an exporter fault).
assert_eq "220 mx.test.local ESMTP Postfix (Debian/GNU)" "$(smtp_banner "$postfix_port")" \
  "Postfix greeting"
first_exim_banner=$(smtp_banner "$exim_port")
assert_contains "$first_exim_banner" "220 mx.test.local ESMTP Exim 4.96 " "Exim greeting"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 2s
  timeout: 1s
  helo_name: monitor.test.local
targets:
  - name: postfix
    address: 127.0.0.1:$postfix_port
  - name: exim
    address: 127.0.0.1:$exim_port
EOF
start_exporter "$BINARY" "$config"

scrape_file=$WORKDIR/metrics.txt
# take_scrape: a fresh /metrics in $scrape_file (replaced whole, never half-written).
take_scrape() {
  scrape "$EXPORTER_PORT" >"$scrape_file.new" && mv "$scrape_file.new" "$scrape_file"
}
_both_probed() {
  take_scrape &&
    has_series "$scrape_file" 'smtp_last_probe_timestamp_seconds{target="postfix"}' &&
    has_series "$scrape_file" 'smtp_last_probe_timestamp_seconds{target="exim"}'
}
wait_until 20 "smtp_last_probe_timestamp_seconds for targets postfix and exim" _both_probed
cp "$scrape_file" "$WORKDIR/first_scrape.txt"
s=$WORKDIR/first_scrape.txt
now_s=$(($(now_us) / 1000000))

for t in postfix exim; do
  log "--- target $t"
  assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 1
  assert_series_count "$s" "smtp_banner_info{target=\"$t\"}" 1
  assert_metric "$s" "smtp_banner_info{target=\"$t\",hostname=\"mx.test.local\",software=\"$t\"}" 1
  assert_metric "$s" "smtp_greeting_code{target=\"$t\"}" 220
  assert_metric "$s" "smtp_greeting_seconds{target=\"$t\"}" '>' 0
  assert_metric "$s" "smtp_greeting_seconds{target=\"$t\"}" '<' 1
  assert_metric "$s" "smtp_quit_code{target=\"$t\"}" 221
  assert_metric "$s" "smtp_quit_success{target=\"$t\"}" 1
  assert_metric "$s" "smtp_probe_duration_seconds{target=\"$t\"}" '>' 0
  assert_metric "$s" "smtp_probe_duration_seconds{target=\"$t\"}" '<' 1
  # Phases that ran over plain TCP; no TLS was asked for, so no TLS phase and no TLS gauges.
  for phase in connect greeting ehlo quit; do
    assert_metric "$s" "smtp_phase_seconds{target=\"$t\",phase=\"$phase\"}" '>=' 0
  done
  assert_no_series "$s" "smtp_phase_seconds{target=\"$t\",phase=\"starttls\"}"
  assert_no_series "$s" "smtp_phase_seconds{target=\"$t\",phase=\"tls_handshake\"}"
  assert_no_series "$s" "smtp_tls_info{target=\"$t\"}"
  assert_no_series "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}"
  # No expect_hostname in the config: no hostname-match gauge.
  assert_no_series "$s" "smtp_banner_hostname_match{target=\"$t\"}"
  # Both servers offer STARTTLS in their EHLO reply.
  assert_metric "$s" "smtp_starttls_advertised{target=\"$t\"}" 1
  assert_metric "$s" "smtp_probes_total{target=\"$t\",result=\"success\"}" '>=' 1
  # A healthy server on loopback: every probe so far succeeded.
  success=$(metric_value "$s" "smtp_probes_total{target=\"$t\",result=\"success\"}")
  assert_eq "$success" "$(metric_sum "$s" "smtp_probes_total{target=\"$t\"}")" \
    "all smtp_probes_total{target=\"$t\"} (success only)"
  assert_metric "$s" "smtp_greeting_duration_seconds_count{target=\"$t\"}" '>=' 1
  assert_metric "$s" "smtp_greeting_duration_seconds_bucket{target=\"$t\",le=\"+Inf\"}" '>=' 1
  # Seconds since the epoch (not ms), and recent.
  assert_metric "$s" "smtp_last_probe_timestamp_seconds{target=\"$t\"}" '>' $((now_s - 60))
  assert_metric "$s" "smtp_last_probe_timestamp_seconds{target=\"$t\"}" '<' $((now_s + 5))
done

log "--- the exporter's own metrics"
assert_metric "$s" 'smtp_exporter_targets' 2
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 1
assert_metric "$s" 'smtp_exporter_config_last_reload_success_timestamp_seconds' '>' \
  $((now_s - 120))
assert_series_count "$s" 'smtp_exporter_build_info' 1
assert_metric "$s" 'smtp_exporter_build_info' 1
assert_metric "$s" 'smtp_exporter_probes_in_flight' '>=' 0
assert_metric "$s" 'process_resident_memory_bytes' '>' 0
assert_metric "$s" 'process_start_time_seconds' '>' $((now_s - 120))

log "--- promtool check metrics"
if ! promtool check metrics <"$s" >"$WORKDIR/promtool.out" 2>&1; then
  fail "promtool check metrics rejects the scrape:"$'\n'"$(cat "$WORKDIR/promtool.out")"
fi
log "ok: promtool check metrics passes"

log "--- what the servers saw: EHLO with helo_name, then QUIT"
# Exim (log_selector +smtp_connection) logs the EHLO name and how the session ended.
_exim_saw_quit() {
  grep -Eq 'SMTP connection from \(monitor\.test\.local\) \[127\.0\.0\.1\](:[0-9]+)? closed by QUIT' \
    "$WORKDIR/exim/log/mainlog"
}
wait_until 5 "Exim's log to show a session from (monitor.test.local) closed by QUIT" \
  _exim_saw_quit
log "ok: Exim saw EHLO monitor.test.local and QUIT"
_postfix_saw_quit() { grep -q 'disconnect from .* ehlo=1 quit=1 commands=2' \
  "$WORKDIR/postfix/postfix.log"; }
wait_until 5 "Postfix's log to show a session 'ehlo=1 quit=1 commands=2'" _postfix_saw_quit
log "ok: Postfix saw EHLO and QUIT"

log "--- Exim's banner changes on every connection: still one smtp_banner_info series"
_exim_probed_5() {
  take_scrape && (($(metric_sum "$scrape_file" 'smtp_probes_total{target="exim"}') >= 5))
}
wait_until 40 "5 probes of target exim" _exim_probed_5
last_exim_banner=$(smtp_banner "$exim_port")
[[ $last_exim_banner != "$first_exim_banner" ]] ||
  fail "test premise: Exim's banner did not change ('$last_exim_banner')"
assert_series_count "$scrape_file" 'smtp_banner_info{target="exim"}' 1
assert_metric "$scrape_file" \
  'smtp_banner_info{target="exim",hostname="mx.test.local",software="exim"}' 1
assert_series_count "$scrape_file" 'smtp_banner_info{target="postfix"}' 1
assert_metric "$scrape_file" 'smtp_probe_success{target="exim"}' 1

log "--- HTTP: content type, gzip"
headers=$WORKDIR/plain.headers
curl -sS --max-time 10 -D "$headers" -o "$WORKDIR/plain.body" "$EXPORTER_URL/metrics" ||
  fail "GET /metrics failed"
assert_contains "$(head -n 1 "$headers")" " 200" "GET /metrics status line"
content_type=$(grep -i '^content-type:' "$headers" | tr -d '\r') || true
assert_contains "${content_type,,}" "text/plain" "Content-Type of /metrics"
assert_contains "${content_type,,}" "version=0.0.4" "Content-Type of /metrics"
if grep -qi '^content-encoding:' "$headers"; then
  fail "no Accept-Encoding was sent, but the answer has $(grep -i '^content-encoding:' "$headers")"
fi
assert_contains "$(cat "$WORKDIR/plain.body")" "# TYPE smtp_probe_success gauge" "plain /metrics"

headers=$WORKDIR/gzip.headers
curl -sS --max-time 10 -D "$headers" --compressed -o "$WORKDIR/gzip.body" \
  "$EXPORTER_URL/metrics" || fail "curl --compressed /metrics failed"
encoding=$(grep -i '^content-encoding:' "$headers" | tr -d '\r') || true
assert_eq "content-encoding: gzip" "${encoding,,}" "Content-Encoding with curl --compressed"
assert_contains "$(cat "$WORKDIR/gzip.body")" 'smtp_probe_success{' \
  "/metrics decompressed by curl"

curl -sS --max-time 10 -H 'Accept-Encoding: gzip' -o "$WORKDIR/raw.gz" "$EXPORTER_URL/metrics" ||
  fail "GET /metrics with Accept-Encoding: gzip failed"
gzip -t "$WORKDIR/raw.gz" 2>"$WORKDIR/gzip.err" ||
  fail "Accept-Encoding: gzip: the body is not valid gzip: $(cat "$WORKDIR/gzip.err")"
gzip -dc "$WORKDIR/raw.gz" >"$WORKDIR/raw.txt"
assert_metric "$WORKDIR/raw.txt" 'smtp_probe_success{target="postfix"}' 1
log "ok: gzip body is valid and holds the metrics"

log "mta_test: $_ASSERTIONS assertions passed"
