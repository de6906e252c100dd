#!/usr/bin/env bash
# addresses_test.sh BINARY: `ip_protocol` and `all_addresses` against a real DNS server (dnsmasq
# on 127.0.0.1) and a real Postfix that listens on 127.0.0.1:P only, so that [::1]:P and
# 127.0.0.2:P refuse at once. multi.test.local has A 127.0.0.1 and AAAA ::1; the MX host of
# dual.test.local has two A records, 127.0.0.1 and 127.0.0.2. Checks:
#   - all_addresses: one endpoint per address with an `address` label (and `mx` for an MX
#     target), each with its own outcome; ip_protocol ip4 keeps only the IPv4 endpoint; the TLS
#     name verified stays the host name (the certificate has no IP SAN);
#   - ip_protocol ip6 without all_addresses: only ::1 is tried (connect_refused);
#   - ip_protocol any: the race tries ::1 first, is refused, and 127.0.0.1 wins (and where
#     neither address listens, the failure names both attempts, ::1 first);
#   - the AAAA record goes, then a POST /-/reload looks the host up again: the ::1 endpoint's
#     series go, the 127.0.0.1 endpoint keeps its counters.
# Without an IPv6 loopback address the test is skipped (exit 77, ctest's SKIP_RETURN_CODE).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: addresses_test.sh path/to/smtp_exporter}

# Checked before test_init: a skip leaves nothing behind and shows no failure logs.
if ! grep -qE '^\s*inet6 ::1/128' <<<"$(ip -6 addr show dev lo 2>/dev/null)"; then
  printf '%s\n' "SKIP: addresses_test: 'ip -6 addr show lo' lists no ::1 (IPv6 disabled on" \
    "this machine?): a name with an AAAA ::1 cannot be probed over IPv6 here" >&2
  exit 77
fi

test_init addresses 240
require_binary "$BINARY"

# A test CA and a server certificate for multi.test.local only: no IP SAN, so a probe that
# verified the certificate against the endpoint's address instead of the host name would fail.
ca=$WORKDIR/ca
mkdir -p "$ca"
chmod 755 "$ca"
{
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=addresses_test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$ca/ca.key" -out "$ca/ca.pem" &&
    openssl req -new -newkey rsa:2048 -nodes -subj /CN=multi.test.local \
      -keyout "$ca/server.key" -out "$ca/server.csr" &&
    printf '%s\n' "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:multi.test.local" >"$ca/server.ext" &&
    openssl x509 -req -in "$ca/server.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
      -CAcreateserial -days 10 -sha256 -extfile "$ca/server.ext" -out "$ca/server.pem"
} >"$ca/openssl.out" 2>&1 || fail "openssl: $(cat "$ca/openssl.out")"
chmod 644 "$ca/ca.pem" "$ca/server.pem"
openssl verify -CAfile "$ca/ca.pem" -verify_hostname multi.test.local "$ca/server.pem" \
  >"$ca/verify.out" 2>&1 || fail "the test certificate does not verify: $(cat "$ca/verify.out")"
if openssl verify -CAfile "$ca/ca.pem" -verify_ip 127.0.0.1 "$ca/server.pem" >/dev/null 2>&1; then
  fail "test premise: the test certificate should not verify for the IP address 127.0.0.1"
fi
log "ok: the test certificate verifies for multi.test.local, not for 127.0.0.1"

port=$(pick_port)
closed_port=$(pick_port) # nothing listens there, on either address
dns_port=$(pick_dns_port)
start_postfix "$WORKDIR" "$port" --cert "$ca/server.pem" --key "$ca/server.key"

zone=test.local
mx_records=(
  'mx-host=dual.test.local,mxa.test.local,10'
  # Two options, one address each: dnsmasq answers both A records.
  'host-record=mxa.test.local,127.0.0.1'
  'host-record=mxa.test.local,127.0.0.2'
)
records_v1=("${mx_records[@]}" 'host-record=multi.test.local,127.0.0.1,::1')
records_v2=("${mx_records[@]}" 'host-record=multi.test.local,127.0.0.1')
start_dns "$dns_port" "$zone" "${records_v1[@]}"

log "--- the peers are what this test assumes"
assert_eq $'NOERROR\n127.0.0.1' "$(dns_query A multi.test.local)" "A of multi.test.local"
assert_eq $'NOERROR\n::1' "$(dns_query AAAA multi.test.local)" "AAAA of multi.test.local"
assert_eq $'NOERROR\n10 mxa.test.local.' "$(dns_query MX dual.test.local)" "MX of dual.test.local"
assert_eq $'NOERROR\n127.0.0.1\n127.0.0.2' "$(dns_query A mxa.test.local)" "A of mxa.test.local"
assert_eq "220 mx.test.local ESMTP Postfix (Debian/GNU)" "$(smtp_banner "$port")" \
  "Postfix greeting on 127.0.0.1:$port"
for refused in ::1 127.0.0.2; do
  if port_open "$refused" "$port"; then
    fail "test premise: Postfix should listen on 127.0.0.1:$port only, but $refused accepts"
  fi
done
for refused in ::1 127.0.0.1; do
  if port_open "$refused" "$closed_port"; then
    fail "test premise: nothing should listen on port $closed_port, but $refused accepts"
  fi
done
log "ok: nothing listens on [::1]:$port, 127.0.0.2:$port, or port $closed_port"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 2s
  timeout: 1500ms
  helo_name: monitor.test.local
dns:
  servers: ["127.0.0.1:$dns_port"]
targets:
  - name: both
    address: multi.test.local:$port
    all_addresses: true
  - name: v4
    address: multi.test.local:$port
    all_addresses: true
    ip_protocol: ip4
  - name: v6
    address: multi.test.local:$port
    ip_protocol: ip6
  - name: race
    address: multi.test.local:$port
    ip_protocol: any
    all_addresses: false
  - name: racefail
    address: multi.test.local:$closed_port
    ip_protocol: any
  - name: tlsname
    address: multi.test.local:$port
    all_addresses: true
    ip_protocol: ip4
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem}
  - name: mxall
    mx: dual.test.local
    port: $port
    all_addresses: true
    mx_refresh: 2s
EOF
start_exporter "$BINARY" "$config"

s=$WORKDIR/metrics.txt
take_scrape() { scrape "$EXPORTER_PORT" >"$s.new" && mv "$s.new" "$s"; }
# target_series FILE NAME: the series lines with target="NAME".
target_series() { grep -v '^#' "$1" | grep -E "[{,]target=\"$2\"[,}]" || true; }

ts=smtp_last_probe_timestamp_seconds
_first_round() {
  take_scrape &&
    has_series "$s" "$ts{target=\"both\",address=\"127.0.0.1\"}" &&
    has_series "$s" "$ts{target=\"both\",address=\"::1\"}" &&
    has_series "$s" "$ts{target=\"v4\",address=\"127.0.0.1\"}" &&
    has_series "$s" "$ts{target=\"v6\"}" &&
    has_series "$s" "$ts{target=\"race\"}" &&
    has_series "$s" "$ts{target=\"racefail\"}" &&
    has_series "$s" "$ts{target=\"tlsname\",address=\"127.0.0.1\"}" &&
    has_series "$s" "$ts{target=\"mxall\",mx=\"mxa.test.local\",address=\"127.0.0.1\"}" &&
    has_series "$s" "$ts{target=\"mxall\",mx=\"mxa.test.local\",address=\"127.0.0.2\"}"
}
wait_until 30 "a first probe of every endpoint" _first_round

log "--- target both: all_addresses, one endpoint per address of multi.test.local"
assert_series_count "$s" 'smtp_probe_success{target="both"}' 2
assert_metric "$s" 'smtp_probe_success{target="both",address="127.0.0.1"}' 1
assert_metric "$s" 'smtp_probes_total{target="both",address="127.0.0.1",result="success"}' '>=' 1
both4='target="both",address="127.0.0.1"'
assert_metric "$s" "smtp_banner_info{$both4,hostname=\"mx.test.local\",software=\"postfix\"}" 1
assert_metric "$s" 'smtp_quit_code{target="both",address="127.0.0.1"}' 221
assert_metric "$s" 'smtp_probe_success{target="both",address="::1"}' 0
assert_metric "$s" 'smtp_probes_total{target="both",address="::1",result="connect_refused"}' \
  '>=' 1
assert_no_series "$s" 'smtp_probes_total{target="both",address="::1",result="success"}'
assert_metric "$s" 'smtp_greeting_code{target="both",address="::1"}' 0
# Every series of the target belongs to one of the two endpoints, and none has an mx label.
while IFS= read -r line; do
  [[ $line == *'address="127.0.0.1"'* || $line == *'address="::1"'* ]] ||
    fail "a series of target both without an endpoint's address label: $line"
  [[ $line != *'mx="'* ]] || fail "a series of target both with an mx label: $line"
done < <(target_series "$s" both)
log "ok: every series of target both has address=\"127.0.0.1\" or address=\"::1\", none has mx"

log "--- target v4: all_addresses with ip_protocol ip4, only the IPv4 endpoint"
assert_series_count "$s" 'smtp_probe_success{target="v4"}' 1
assert_metric "$s" 'smtp_probe_success{target="v4",address="127.0.0.1"}' 1
bad_v4=$(target_series "$s" v4 | grep -v 'address="127.0.0.1"' || true)
[[ -z $bad_v4 ]] || fail "series of target v4 outside the endpoint 127.0.0.1:"$'\n'"$bad_v4"
log "ok: every series of target v4 has address=\"127.0.0.1\""

log "--- target v6: ip_protocol ip6, only ::1 is tried"
assert_series_count "$s" 'smtp_probe_success{target="v6"}' 1
assert_metric "$s" 'smtp_probe_success{target="v6"}' 0
assert_metric "$s" 'smtp_probes_total{target="v6",result="connect_refused"}' '>=' 1
assert_eq "$(metric_sum "$s" 'smtp_probes_total{target="v6"}')" \
  "$(metric_value "$s" 'smtp_probes_total{target="v6",result="connect_refused"}')" \
  "all smtp_probes_total{target=\"v6\"} (connect_refused only)"
assert_metric "$s" 'smtp_phase_seconds{target="v6",phase="connect"}' '>=' 0
bad_v6=$(target_series "$s" v6 | grep -E '[{,](address|mx)="' || true)
[[ -z $bad_v6 ]] || fail "series of target v6 with an address or mx label:"$'\n'"$bad_v6"
_v6_failure_logged() {
  grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -F 'target=v6 ' |
    grep -F 'reason=connect_refused ' | grep -qF 'phase=connect '
}
wait_until 5 "a log line: probe failed target=v6 reason=connect_refused" _v6_failure_logged
log "ok: $(grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -m1 -F 'target=v6 ')"

log "--- target race: ip_protocol any, ::1 refused at once, 127.0.0.1 wins"
assert_series_count "$s" 'smtp_probe_success{target="race"}' 1
assert_metric "$s" 'smtp_probe_success{target="race"}' 1
assert_metric "$s" 'smtp_probes_total{target="race",result="success"}' '>=' 1
assert_no_series "$s" 'smtp_probes_total{target="race",result="connect_refused"}'
assert_metric "$s" 'smtp_phase_seconds{target="race",phase="connect"}' '>=' 0
assert_metric "$s" 'smtp_phase_seconds{target="race",phase="resolve"}' '>' 0
race_connect=$(metric_value "$s" 'smtp_phase_seconds{target="race",phase="connect"}')
# A won race logs nothing; a lost one names every attempt in order: ::1 first, then 127.0.0.1.
assert_metric "$s" 'smtp_probe_success{target="racefail"}' 0
assert_metric "$s" 'smtp_probes_total{target="racefail",result="connect_refused"}' '>=' 1
_racefail_logged() { grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -qF 'target=racefail '; }
wait_until 5 "a log line: probe failed target=racefail" _racefail_logged
racefail_line=$(grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -m1 -F 'target=racefail ')
v6_attempt="[::1]:$closed_port: Connection refused after "
v4_attempt="127.0.0.1:$closed_port: Connection refused after "
[[ $racefail_line == *"reason=connect_refused "*"$v6_attempt"*"; $v4_attempt"* ]] ||
  fail "target racefail: expected a log line with reason=connect_refused naming the attempt" \
    "'$v6_attempt...' and then '$v4_attempt...', got: $racefail_line"
log "ok: $racefail_line"

log "--- target tlsname: the endpoint 127.0.0.1 still verifies the certificate of the host name"
assert_series_count "$s" 'smtp_probe_success{target="tlsname"}' 1
assert_metric "$s" 'smtp_probe_success{target="tlsname",address="127.0.0.1"}' 1
assert_metric "$s" 'smtp_tls_cert_verified{target="tlsname",address="127.0.0.1"}' 1
assert_metric "$s" 'smtp_tls_cert_expiry_timestamp_seconds{target="tlsname",address="127.0.0.1"}' \
  "$(cert_not_after_unix "$ca/server.pem")"

log "--- target mxall: MX host mxa.test.local with two A records, one endpoint each"
mxa='target="mxall",mx="mxa.test.local"'
assert_series_count "$s" 'smtp_probe_success{target="mxall"}' 2
assert_metric "$s" "smtp_probe_success{$mxa,address=\"127.0.0.1\"}" 1
assert_metric "$s" "smtp_probes_total{$mxa,address=\"127.0.0.1\",result=\"success\"}" '>=' 1
assert_metric "$s" "smtp_probe_success{$mxa,address=\"127.0.0.2\"}" 0
assert_metric "$s" "smtp_probes_total{$mxa,address=\"127.0.0.2\",result=\"connect_refused\"}" \
  '>=' 1
assert_no_series "$s" "smtp_probes_total{$mxa,address=\"127.0.0.2\",result=\"success\"}"
assert_metric "$s" 'smtp_mx_hosts{target="mxall"}' 1
assert_metric "$s" "smtp_mx_preference{$mxa}" 10
assert_metric "$s" 'smtp_exporter_targets' 7

log "--- promtool check metrics"
promtool check metrics <"$s" >"$WORKDIR/promtool.out" 2>&1 ||
  fail "promtool check metrics rejects the scrape:"$'\n'"$(cat "$WORKDIR/promtool.out")"
log "ok: promtool check metrics passes"

log "--- the AAAA record goes; a reload looks multi.test.local up again"
stop_dns
start_dns "$dns_port" "$zone" "${records_v2[@]}"
assert_eq NOERROR "$(dns_query AAAA multi.test.local)" "AAAA of multi.test.local (none now)"
assert_eq $'NOERROR\n127.0.0.1' "$(dns_query A multi.test.local)" "A of multi.test.local"
# mx_refresh is 5m for `both`: until the reload, its endpoints are those of the first lookup.
take_scrape
assert_metric "$s" 'smtp_probe_success{target="both",address="::1"}' 0
# The IPv4 endpoint is probed by address: the DNS restart does not touch it. Wait for a moment
# when it has a fresh probe behind it, then note its counters.
seen=$(metric_sum "$s" 'smtp_probes_total{target="both",address="127.0.0.1"}')
_probed_since() {
  take_scrape &&
    num_cmp "$(metric_sum "$s" 'smtp_probes_total{target="both",address="127.0.0.1"}')" '>' "$seen"
}
wait_until 10 "another probe of both/127.0.0.1" _probed_since
v4_sel='target="both",address="127.0.0.1"'
before=$(metric_sum "$s" "smtp_probes_total{$v4_sel}")
before_success=$(metric_value "$s" "smtp_probes_total{$v4_sel,result=\"success\"}")
before_hist=$(metric_value "$s" "smtp_greeting_duration_seconds_count{$v4_sel}")
log "before the reload: both/127.0.0.1: $before probes ($before_success successful)," \
  "histogram count $before_hist"
assert_eq 200 "$(http_status "$EXPORTER_URL/-/reload" -X POST)" "POST /-/reload"
# both_v6_series FILE: the series of target both with address="::1".
both_v6_series() { target_series "$1" both | grep -F 'address="::1"' || true; }
_v6_gone() { take_scrape && [[ -z $(both_v6_series "$s") ]]; }
wait_until 10 "every series of both with address=\"::1\" to go" _v6_gone
log "ok: no series of target both has address=\"::1\""
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 1
assert_series_count "$s" 'smtp_probe_success{target="both"}' 1
assert_metric "$s" "smtp_probe_success{$v4_sel}" 1
assert_metric "$s" "smtp_probes_total{$v4_sel}" '>=' "$before"
assert_metric "$s" "smtp_probes_total{$v4_sel,result=\"success\"}" '>=' "$before_success"
assert_metric "$s" "smtp_greeting_duration_seconds_count{$v4_sel}" '>=' "$before_hist"
grep -F 'msg="endpoints changed"' "$EXPORTER_LOG" | grep -F 'target=both ' | tail -n 1 |
  grep -qF 'endpoints=127.0.0.1' ||
  fail "no log line 'endpoints changed' for target both listing only 127.0.0.1:"$'\n'"$(
    grep -F 'msg="endpoints changed"' "$EXPORTER_LOG" || true)"
log "ok: $(grep -F 'msg="endpoints changed"' "$EXPORTER_LOG" | grep -F 'target=both ' | tail -n 1)"
_probed_after_reload() {
  take_scrape &&
    num_cmp "$(metric_sum "$s" "smtp_probes_total{$v4_sel}")" '>' "$before"
}
wait_until 10 "both/127.0.0.1 probed again after the reload" _probed_after_reload
assert_metric "$s" "smtp_probe_success{$v4_sel}" 1
assert_metric "$s" "smtp_probes_total{$v4_sel,result=\"success\"}" '>' "$before_success"
assert_metric "$s" "smtp_greeting_duration_seconds_count{$v4_sel}" '>' "$before_hist"
assert_series_count "$s" 'smtp_probe_success{target="both"}' 1
[[ -z $(both_v6_series "$s") ]] ||
  fail "series of both with address=\"::1\" came back:"$'\n'"$(both_v6_series "$s")"
# The other targets are as before.
assert_metric "$s" 'smtp_probe_success{target="v4",address="127.0.0.1"}' 1
assert_series_count "$s" 'smtp_probe_success{target="mxall"}' 2
assert_metric "$s" "smtp_probe_success{$mxa,address=\"127.0.0.1\"}" 1
assert_metric "$s" "smtp_probe_success{$mxa,address=\"127.0.0.2\"}" 0
promtool check metrics <"$s" >"$WORKDIR/promtool.out" 2>&1 ||
  fail "promtool check metrics rejects the scrape after the reload:"$'\n'"$(
    cat "$WORKDIR/promtool.out")"
log "ok: promtool check metrics passes after the reload"

log "--- what the exporter saw (figures for the record)"
log "race: connect ${race_connect}s (::1 refused, then 127.0.0.1; attempt delay 250 ms)"
for sel in 'target="both",address="127.0.0.1"' 'target="v6"' \
  "$mxa,address=\"127.0.0.2\""; do
  connect=$(metric_value "$s" "smtp_phase_seconds{$sel,phase=\"connect\"}")
  log "$sel: last connect ${connect:-(none: the last probe ended before)}${connect:+s}," \
    "results: $(metric_lines "$s" "smtp_probes_total{$sel}" |
      sed 's/.*result="\([^"]*\)"} /\1=/' | paste -sd, -)"
done
log "addresses_test: $_ASSERTIONS assertions passed"
