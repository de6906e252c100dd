#!/usr/bin/env bash
# harness_test.sh [BINARY]: checks the test harness itself, without the exporter (the argument
# ctest passes is ignored): Postfix, Exim and OpenSMTPD start on loopback from private
# directories, greet as the other tests expect, offer STARTTLS (Postfix's and Exim's handshakes
# verify against the test certificate), Prometheus scrapes and answers queries. When this test
# fails, the other integration tests' failures say nothing about the exporter.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
test_init harness 120

postfix_port=$(pick_port)
exim_port=$(pick_port)
opensmtpd_port=$(pick_port)
prometheus_port=$(pick_port)

start_postfix "$WORKDIR" "$postfix_port"
start_exim "$WORKDIR" "$exim_port"
start_opensmtpd "$WORKDIR" "$opensmtpd_port"

assert_eq "220 mx.test.local ESMTP Postfix (Debian/GNU)" "$(smtp_banner "$postfix_port")" \
  "Postfix greeting"
banner=$(smtp_banner "$exim_port")
[[ $banner =~ ^220\ mx\.test\.local\ ESMTP\ Exim\ 4\.96\ [A-Z][a-z]{2},\ [0-9]{1,2}\ .*[0-9]{2}:[0-9]{2}:[0-9]{2} ]] ||
  fail "Exim greeting: expected '220 mx.test.local ESMTP Exim 4.96 <date>', got '$banner'"
log "ok: Exim greeting '$banner'"
assert_eq "220 mx.test.local ESMTP OpenSMTPD" "$(smtp_banner "$opensmtpd_port")" \
  "OpenSMTPD greeting"

for mta in postfix exim opensmtpd; do
  port_var=${mta}_port
  session=$(smtp_session "${!port_var}")
  assert_contains "$session" "250-STARTTLS" "$mta EHLO reply"
  last=$(tail -n 1 <<<"$session")
  [[ $last == 221\ * ]] || fail "$mta: expected a 221 reply to QUIT, got '$last'"
  log "ok: $mta answers QUIT with '$last'"
done

for mta in postfix exim; do
  port_var=${mta}_port
  out=$(timeout 20 openssl s_client -starttls smtp -connect "127.0.0.1:${!port_var}" \
    -servername mx.test.local -CAfile "$WORKDIR/tls/cert.pem" -verify_return_error \
    </dev/null 2>&1) || true
  assert_contains "$out" "Verify return code: 0 (ok)" "$mta STARTTLS handshake"
done

# Prometheus scraping itself: the query helper sees a sample within the deadline.
start_prometheus "$WORKDIR" "$prometheus_port" "127.0.0.1:$prometheus_port"
_self_scraped() { [[ $(prom_query "$prometheus_port" 'up{job="smtp_exporter"}') == 1 ]]; }
wait_until 30 "Prometheus to scrape itself (up == 1)" _self_scraped
log "ok: Prometheus query API answers up == 1"

# Stopping is part of the harness: nothing may be left for the next test.
stop_prometheus
stop_opensmtpd
stop_exim
stop_postfix "$WORKDIR"
for port in "$postfix_port" "$exim_port" "$opensmtpd_port" "$prometheus_port"; do
  ! port_open 127.0.0.1 "$port" || fail "port $port still accepts connections after stop"
done
log "ok: every server stopped"
