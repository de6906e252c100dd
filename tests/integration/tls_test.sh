#!/usr/bin/env bash
# tls_test.sh BINARY: STARTTLS and implicit TLS against real peers on loopback.
# A test CA signs a certificate for mx.test.local (and IP 127.0.0.1); Postfix (STARTTLS, and
# implicit TLS on a second port) and Exim (STARTTLS) present it; OpenSMTPD advertises STARTTLS
# but its handshake fails with OpenSSL 3 (a real broken peer). Checks the TLS metrics against
# the certificate and against what `openssl s_client` negotiates with the same servers, the
# failure reasons (tls_verify_failed without the CA, tls_handshake_failed with OpenSMTPD) and
# their log lines, the EHLO metrics of a plain target, and the exposition (promtool).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: tls_test.sh path/to/smtp_exporter}
test_init tls 240
require_binary "$BINARY"

ca=$WORKDIR/ca
make_test_ca "$ca"
expiry=$(cert_not_after_unix "$ca/server.pem") || fail "cannot read notAfter of $ca/server.pem"
ca_expiry=$(cert_not_after_unix "$ca/ca.pem") || fail "cannot read notAfter of $ca/ca.pem"
((expiry < ca_expiry)) || fail "test premise: the server certificate should expire before the CA"
log "server certificate: notAfter $expiry ($(date -u -d "@$expiry" +%FT%TZ)); CA: $ca_expiry"

postfix_port=$(pick_port)
smtps_port=$(pick_port)
exim_port=$(pick_port)
opensmtpd_port=$(pick_port)
cert_args=(--cert "$ca/server.pem" --key "$ca/server.key")
start_postfix "$WORKDIR" "$postfix_port" "${cert_args[@]}" --smtps-port "$smtps_port"
start_exim "$WORKDIR" "$exim_port" "${cert_args[@]}"
start_opensmtpd "$WORKDIR" "$opensmtpd_port" "${cert_args[@]}"

log "--- the peers are what this test assumes"
assert_eq "220 mx.test.local ESMTP Postfix (Debian/GNU)" "$(smtp_banner "$postfix_port")" \
  "Postfix greeting"
assert_contains "$(smtp_banner "$exim_port")" "220 mx.test.local ESMTP Exim 4.96 " "Exim greeting"
assert_eq "220 mx.test.local ESMTP OpenSMTPD" "$(smtp_banner "$opensmtpd_port")" \
  "OpenSMTPD greeting"

# s_client NAME ARGS...: a handshake with openssl s_client, verified against the test CA for
# mx.test.local; its output in WORKDIR/s_client.NAME.
s_client() {
  local name=$1
  shift
  timeout 20 openssl s_client "$@" -servername mx.test.local -verify_hostname mx.test.local \
    -CAfile "$ca/ca.pem" -verify_return_error </dev/null >"$WORKDIR/s_client.$name" 2>&1 || true
  cat "$WORKDIR/s_client.$name"
}
# What OpenSSL's own client negotiates with each server: the exporter, with OpenSSL's default
# client settings too, must report the same.
declare -A want_version want_cipher
for peer in postfix exim implicit; do
  case $peer in
    postfix) out=$(s_client "$peer" -starttls smtp -connect "127.0.0.1:$postfix_port") ;;
    exim) out=$(s_client "$peer" -starttls smtp -connect "127.0.0.1:$exim_port") ;;
    implicit) out=$(s_client "$peer" -connect "127.0.0.1:$smtps_port") ;;
  esac
  assert_contains "$out" "Verify return code: 0 (ok)" "openssl s_client with $peer"
  [[ $out =~ New,\ TLSv([0-9.]+),\ Cipher\ is\ ([A-Za-z0-9_-]+) ]] ||
    fail "openssl s_client with $peer: no 'New, TLSv..., Cipher is ...' line:"$'\n'"$out"
  want_version[$peer]="TLS ${BASH_REMATCH[1]}"
  want_cipher[$peer]=${BASH_REMATCH[2]}
  log "openssl s_client with $peer: ${want_version[$peer]}, ${want_cipher[$peer]}"
done
out=$(s_client opensmtpd -starttls smtp -connect "127.0.0.1:$opensmtpd_port")
# With TLS 1.3 the client's side of the handshake ends with its Finished, so s_client prints a
# protocol and a cipher; OpenSMTPD then fails on that Finished and answers with an alert.
[[ $out =~ (SSL alert number [0-9]+) ]] ||
  fail "test premise: OpenSMTPD's STARTTLS handshake was expected to fail with an alert," \
    "but openssl s_client says:"$'\n'"$out"
log "ok: OpenSMTPD ends openssl s_client's handshake with: $(grep -m1 -F "${BASH_REMATCH[1]}" \
  "$WORKDIR/s_client.opensmtpd")"

size_limit=$(postconf -c "$WORKDIR/postfix/etc" -h message_size_limit)
[[ $size_limit =~ ^[0-9]+$ ]] || fail "postconf message_size_limit: '$size_limit'"
assert_contains "$(smtp_session "$postfix_port")" "250-SIZE $size_limit" "Postfix EHLO reply"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 2s
  timeout: 1500ms
  helo_name: monitor.test.local
targets:
  - name: postfix-starttls
    address: 127.0.0.1:$postfix_port
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
  - name: exim-starttls
    address: 127.0.0.1:$exim_port
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
  - name: postfix-noca
    address: 127.0.0.1:$postfix_port
    tls: starttls
    tls_config: {server_name: mx.test.local}
  - name: postfix-implicit
    address: 127.0.0.1:$smtps_port
    tls: implicit
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
  - name: opensmtpd
    address: 127.0.0.1:$opensmtpd_port
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
  - name: postfix-plain
    address: 127.0.0.1:$postfix_port
EOF
targets=(postfix-starttls exim-starttls postfix-noca postfix-implicit opensmtpd postfix-plain)
start_exporter "$BINARY" "$config"

s=$WORKDIR/metrics.txt
take_scrape() { scrape "$EXPORTER_PORT" >"$s.new" && mv "$s.new" "$s"; }
_all_probed() {
  local t
  take_scrape || return 1
  for t in "${targets[@]}"; do
    has_series "$s" "smtp_last_probe_timestamp_seconds{target=\"$t\"}" || return 1
  done
}
wait_until 30 "a first probe of each of: ${targets[*]}" _all_probed

# assert_tls_info FILE TARGET PEER: one smtp_tls_info series, with what s_client got from PEER.
assert_tls_info() {
  local file=$1 t=$2 peer=$3 version cipher
  assert_series_count "$file" "smtp_tls_info{target=\"$t\"}" 1
  version=$(label_value "$file" "smtp_tls_info{target=\"$t\"}" version)
  cipher=$(label_value "$file" "smtp_tls_info{target=\"$t\"}" cipher)
  [[ $version == "TLS 1.3" || $version == "TLS 1.2" ]] ||
    fail "smtp_tls_info{target=\"$t\"}: version '$version', expected TLS 1.3 or TLS 1.2"
  assert_eq "${want_version[$peer]}" "$version" "smtp_tls_info{target=\"$t\"} version"
  assert_eq "${want_cipher[$peer]}" "$cipher" "smtp_tls_info{target=\"$t\"} cipher"
  assert_metric "$file" "smtp_tls_info{target=\"$t\",version=\"$version\",cipher=\"$cipher\"}" 1
}

# assert_all_success FILE TARGET: every probe of TARGET so far succeeded.
assert_all_success() {
  local success
  assert_metric "$1" "smtp_probes_total{target=\"$2\",result=\"success\"}" '>=' 1
  success=$(metric_value "$1" "smtp_probes_total{target=\"$2\",result=\"success\"}")
  assert_eq "$success" "$(metric_sum "$1" "smtp_probes_total{target=\"$2\"}")" \
    "all smtp_probes_total{target=\"$2\"} (success only)"
}

for t in postfix-starttls exim-starttls; do
  log "--- target $t: STARTTLS, verified against the test CA"
  software=${t%%-*}
  assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 1
  assert_all_success "$s" "$t"
  assert_metric "$s" \
    "smtp_banner_info{target=\"$t\",hostname=\"mx.test.local\",software=\"$software\"}" 1
  assert_metric "$s" "smtp_greeting_code{target=\"$t\"}" 220
  assert_metric "$s" "smtp_quit_code{target=\"$t\"}" 221
  assert_metric "$s" "smtp_starttls_advertised{target=\"$t\"}" 1
  assert_metric "$s" "smtp_tls_cert_verified{target=\"$t\"}" 1
  assert_metric "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}" "$expiry"
  assert_tls_info "$s" "$t" "$software"
  for phase in connect greeting ehlo starttls tls_handshake quit; do
    assert_metric "$s" "smtp_phase_seconds{target=\"$t\",phase=\"$phase\"}" '>' 0
  done
done

log "--- target postfix-noca: the system CA store does not know the test CA"
t=postfix-noca
assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 0
assert_metric "$s" "smtp_probes_total{target=\"$t\",result=\"tls_verify_failed\"}" '>=' 1
assert_eq "$(metric_value "$s" "smtp_probes_total{target=\"$t\",result=\"tls_verify_failed\"}")" \
  "$(metric_sum "$s" "smtp_probes_total{target=\"$t\"}")" \
  "all smtp_probes_total{target=\"$t\"} (tls_verify_failed only)"
assert_metric "$s" "smtp_tls_cert_verified{target=\"$t\"}" 0
assert_metric "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}" "$expiry"
assert_tls_info "$s" "$t" postfix
assert_metric "$s" "smtp_phase_seconds{target=\"$t\",phase=\"tls_handshake\"}" '>' 0
# The dialogue still ends with QUIT (README: "the dialogue still ends with QUIT").
assert_metric "$s" "smtp_quit_code{target=\"$t\"}" 221
assert_metric "$s" "smtp_quit_success{target=\"$t\"}" 1

log "--- target postfix-implicit: TLS from the first byte"
t=postfix-implicit
assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 1
assert_all_success "$s" "$t"
assert_metric "$s" \
  "smtp_banner_info{target=\"$t\",hostname=\"mx.test.local\",software=\"postfix\"}" 1
assert_metric "$s" "smtp_tls_cert_verified{target=\"$t\"}" 1
assert_metric "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}" "$expiry"
assert_tls_info "$s" "$t" implicit
assert_metric "$s" "smtp_phase_seconds{target=\"$t\",phase=\"tls_handshake\"}" '>' 0
assert_no_series "$s" "smtp_phase_seconds{target=\"$t\",phase=\"starttls\"}"
assert_metric "$s" "smtp_quit_code{target=\"$t\"}" 221
# No EHLO reply came in plaintext: whether STARTTLS is offered is not known, so no series.
assert_no_series "$s" "smtp_starttls_advertised{target=\"$t\"}"

log "--- target opensmtpd: STARTTLS offered, the handshake fails"
t=opensmtpd
assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 0
assert_metric "$s" "smtp_probes_total{target=\"$t\",result=\"tls_handshake_failed\"}" '>=' 1
assert_metric "$s" "smtp_starttls_advertised{target=\"$t\"}" 1
assert_metric "$s" "smtp_greeting_code{target=\"$t\"}" 220
assert_metric "$s" \
  "smtp_banner_info{target=\"$t\",hostname=\"mx.test.local\",software=\"opensmtpd\"}" 1
assert_metric "$s" "smtp_tls_cert_verified{target=\"$t\"}" 0
assert_metric "$s" "smtp_phase_seconds{target=\"$t\",phase=\"starttls\"}" '>' 0
# No handshake ever completed: no certificate facts (README: absent rather than 0).
assert_no_series "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}"
assert_no_series "$s" "smtp_tls_info{target=\"$t\"}"

log "--- target postfix-plain: the EHLO reply of the STARTTLS Postfix, no TLS"
t=postfix-plain
assert_metric "$s" "smtp_probe_success{target=\"$t\"}" 1
assert_all_success "$s" "$t"
assert_metric "$s" "smtp_starttls_advertised{target=\"$t\"}" 1
assert_metric "$s" "smtp_size_limit_bytes{target=\"$t\"}" "$size_limit"
assert_metric "$s" "smtp_ehlo_extension_info{target=\"$t\",extension=\"PIPELINING\"}" 1
assert_metric "$s" "smtp_ehlo_extension_info{target=\"$t\",extension=\"SIZE\"}" 1
assert_no_series "$s" "smtp_phase_seconds{target=\"$t\",phase=\"starttls\"}"
assert_no_series "$s" "smtp_phase_seconds{target=\"$t\",phase=\"tls_handshake\"}"
assert_no_series "$s" "smtp_tls_info{target=\"$t\"}"
assert_no_series "$s" "smtp_tls_cert_verified{target=\"$t\"}"
assert_no_series "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}"

log "--- promtool check metrics"
if ! promtool check metrics <"$s" >"$WORKDIR/promtool.out" 2>&1; then
  fail "promtool check metrics rejects the scrape:"$'\n'"$(cat "$WORKDIR/promtool.out")"
fi
log "ok: promtool check metrics passes"

log "--- the log lines of the failing probes name the reason and the phase"
# _failure_logged TARGET REASON PHASE: a `probe failed` line with all three and an err.
_failure_logged() {
  grep -F 'msg="probe failed"' "$EXPORTER_LOG" | grep -F "target=$1 " |
    grep -F "reason=$2 " | grep -F "phase=$3 " | grep -q 'err='
}
for spec in "postfix-noca tls_verify_failed tls_handshake" \
  "opensmtpd tls_handshake_failed tls_handshake"; do
  read -r t reason phase <<<"$spec"
  wait_until 5 "a log line: probe failed target=$t reason=$reason phase=$phase err=..." \
    _failure_logged "$t" "$reason" "$phase"
  log "ok: $(grep -F "target=$t " "$EXPORTER_LOG" | grep -m1 -F "reason=$reason ")"
done
if grep -F 'msg="probe failed"' "$EXPORTER_LOG" |
  grep -qE 'target=(postfix-starttls|exim-starttls|postfix-implicit|postfix-plain) '; then
  fail "a probe of a healthy target failed:"$'\n'"$(grep -F 'msg="probe failed"' "$EXPORTER_LOG")"
fi

log "--- what the exporter saw (figures for the record)"
for t in "${targets[@]}"; do
  result=$(label_value "$s" "smtp_probes_total{target=\"$t\"}" result | paste -sd, -)
  log "$t: greeting $(metric_value "$s" "smtp_greeting_seconds{target=\"$t\"}")s," \
    "tls_handshake $(metric_value "$s" \
      "smtp_phase_seconds{target=\"$t\",phase=\"tls_handshake\"}")s," \
    "tls '$(label_value "$s" "smtp_tls_info{target=\"$t\"}" version)'" \
    "$(label_value "$s" "smtp_tls_info{target=\"$t\"}" cipher)," \
    "expiry $(metric_value "$s" "smtp_tls_cert_expiry_timestamp_seconds{target=\"$t\"}")," \
    "results: $result"
done

log "tls_test: $_ASSERTIONS assertions passed"
