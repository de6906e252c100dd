#!/usr/bin/env bash
# ipv6_test.sh BINARY: the exporter probing a real Postfix that listens on [::1] only, by an
# address target "[::1]:PORT": plain, and with STARTTLS verified against the IP address ::1
# (no server_name: the certificate's IP SAN ::1 is what is checked, and no SNI is sent).
# Without an IPv6 loopback address on this machine the test is skipped: exit 77, which ctest
# reports as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: ipv6_test.sh path/to/smtp_exporter}

# Checked before test_init: a skip leaves nothing behind and shows no failure logs.
if ! grep -qE '^\s*inet6 ::1/128' <<<"$(ip -6 addr show dev lo 2>/dev/null)"; then
  printf '%s\n' "SKIP: ipv6_test: 'ip -6 addr show lo' lists no ::1 (IPv6 disabled on this" \
    "machine?): nothing can listen on [::1], so the exporter's IPv6 probing is not tested" >&2
  exit 77
fi

test_init ipv6 180
require_binary "$BINARY"

ca=$WORKDIR/ca
make_test_ca "$ca"
port=$(pick_port)
start_postfix "$WORKDIR" "$port" --address ::1 --cert "$ca/server.pem" --key "$ca/server.key"

log "--- the peer is what this test assumes"
assert_eq "220 mx.test.local ESMTP Postfix (Debian/GNU)" "$(smtp_banner "$port" ::1)" \
  "Postfix greeting on [::1]:$port"
if port_open 127.0.0.1 "$port"; then
  fail "test premise: Postfix should listen on [::1]:$port only, but 127.0.0.1:$port accepts"
fi
log "ok: nothing listens on 127.0.0.1:$port"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 2s
  timeout: 1500ms
  helo_name: monitor.test.local
targets:
  - name: v6
    address: "[::1]:$port"
  - name: v6-starttls
    address: "[::1]:$port"
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem}
EOF
start_exporter "$BINARY" "$config"

s=$WORKDIR/metrics.txt
take_scrape() { scrape "$EXPORTER_PORT" >"$s.new" && mv "$s.new" "$s"; }
_both_probed() {
  take_scrape &&
    has_series "$s" 'smtp_last_probe_timestamp_seconds{target="v6"}' &&
    has_series "$s" 'smtp_last_probe_timestamp_seconds{target="v6-starttls"}'
}
wait_until 20 "a first probe of targets v6 and v6-starttls" _both_probed

for t in v6 v6-starttls; do
  log "--- target $t"
  assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 1
  assert_metric "$s" "smtp_probes_total{target=\"$t\",result=\"success\"}" '>=' 1
  assert_eq "$(metric_value "$s" "smtp_probes_total{target=\"$t\",result=\"success\"}")" \
    "$(metric_sum "$s" "smtp_probes_total{target=\"$t\"}")" \
    "all smtp_probes_total{target=\"$t\"} (success only)"
  assert_metric "$s" \
    "smtp_banner_info{target=\"$t\",hostname=\"mx.test.local\",software=\"postfix\"}" 1
  assert_metric "$s" "smtp_greeting_code{target=\"$t\"}" 220
  assert_metric "$s" "smtp_quit_code{target=\"$t\"}" 221
  assert_metric "$s" "smtp_greeting_seconds{target=\"$t\"}" '>' 0
done
assert_metric "$s" 'smtp_tls_cert_verified{target="v6-starttls"}' 1
assert_metric "$s" 'smtp_tls_cert_expiry_timestamp_seconds{target="v6-starttls"}' \
  "$(cert_not_after_unix "$ca/server.pem")"

_postfix_saw_v6() { grep -q 'connect from [^ ]*\[::1\]' "$WORKDIR/postfix/postfix.log"; }
wait_until 5 "Postfix's log to show a connection from [::1]" _postfix_saw_v6
log "ok: $(grep -m1 'connect from [^ ]*\[::1\]' "$WORKDIR/postfix/postfix.log")"

log "v6: greeting $(metric_value "$s" 'smtp_greeting_seconds{target="v6"}')s;" \
  "v6-starttls: greeting $(metric_value "$s" 'smtp_greeting_seconds{target="v6-starttls"}')s," \
  "tls $(metric_lines "$s" 'smtp_tls_info{target="v6-starttls"}')"
log "ipv6_test: $_ASSERTIONS assertions passed"
