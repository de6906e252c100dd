#!/usr/bin/env bash
# dashboards_test.sh BINARY: the Grafana dashboards (dashboards/*.json) and the Prometheus rules
# (deploy/prometheus) against the real thing.
#   1. the dashboards type-check against Grafana's schema types (@grafana/schema, tsc --strict),
#      each panel's options against its panel plugin's types;
#   2. the exporter probes a real Postfix (STARTTLS, a test CA's certificate with 5 days left)
#      and a real Exim (plain; and STARTTLS with a self-signed certificate, which does not
#      verify), a port where nothing listens, an MX domain from a real DNS server (dnsmasq)
#      with one MX host up and one refusing, and an all_addresses target: every panel has data;
#   3. every metric name that a panel, a variable, a rule or a promtool test series uses, and
#      every label name of the first three, is in the exporter's real /metrics, and every
#      `result` value is one the exporter writes (a renamed metric breaks this test, not the
#      dashboards);
#   4. a real Prometheus scrapes the exporter every second with the rules loaded: every panel
#      query, variables substituted as Grafana does, returns data; every rule evaluates without
#      error and every recording rule has data;
#   5. the alerts this scenario must raise are pending (or firing), and no other.
# $__rate_interval is 4s here: what Grafana computes for a data source whose scrape interval
# is set to 1s (4 x the scrape interval), so that rate() and histogram_quantile() have samples
# within seconds of the first scrape. Needs node, promtool and prometheus (exit 77 without).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: dashboards_test.sh path/to/smtp_exporter}
for tool in node npm prometheus; do
  command -v "$tool" >/dev/null || {
    echo "SKIP: $tool is not installed ($INSTALL_HINT)"
    exit 77
  }
done
test_init dashboards 180
require_binary "$BINARY"
dashboards=("$REPO_ROOT"/dashboards/*.json)
rules=$REPO_ROOT/deploy/prometheus
checks=$REPO_ROOT/tests/support/monitoring
NODE_PATH=$(npm_modules yaml @prometheus-io/lezer-promql typescript @grafana/schema)
export NODE_PATH

log "--- the dashboards against Grafana's schema types"
node "$checks/check_schema.js" "$WORKDIR/schema" "${dashboards[@]}" >"$WORKDIR/schema.out" 2>&1 ||
  fail "check_schema.js:"$'\n'"$(cat "$WORKDIR/schema.out")"
log "ok: $(cat "$WORKDIR/schema.out")"

log "--- the servers"
ca=$WORKDIR/ca
make_test_ca "$ca" 5
postfix_port=$(pick_port)
exim_port=$(pick_port)
closed_port=$(pick_port)
dns_port=$(pick_dns_port)
prometheus_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port" --cert "$ca/server.pem" --key "$ca/server.key"
start_exim "$WORKDIR" "$exim_port" # its certificate is self-signed
start_dns "$dns_port" test.local \
  'mx-host=example.test.local,mx1.test.local,10' 'mx-host=example.test.local,mx2.test.local,20' \
  'host-record=mx1.test.local,127.0.0.1' 'host-record=mx2.test.local,127.0.0.2' \
  'host-record=exim.test.local,127.0.0.1'

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 1s
  timeout: 900ms
  helo_name: monitor.test.local
dns:
  servers: ["127.0.0.1:$dns_port"]
targets:
  - name: postfix
    address: 127.0.0.1:$postfix_port
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
    expect_hostname: mx.test.local
    labels: {team: mail}
  - name: exim
    address: 127.0.0.1:$exim_port
    expect_hostname: mail.example.org
  - name: exim-tls
    address: 127.0.0.1:$exim_port
    tls: starttls
    tls_config: {server_name: mx.test.local}
  - name: exim-each
    address: exim.test.local:$exim_port
    all_addresses: true
    ip_protocol: ip4
  - name: refused
    address: 127.0.0.1:$closed_port
  - name: example
    mx: example.test.local
    port: $postfix_port
EOF
start_exporter "$BINARY" "$config"

scrape_file=$WORKDIR/metrics.txt
# Every kind of series the dashboards show: a TLS certificate, a failed verification, a refused
# connection, both MX hosts, the all_addresses endpoint, a hostname mismatch.
_scenario_probed() {
  scrape "$EXPORTER_PORT" >"$scrape_file.new" && mv "$scrape_file.new" "$scrape_file" &&
    has_series "$scrape_file" 'smtp_tls_cert_expiry_timestamp_seconds{target="postfix"}' &&
    has_series "$scrape_file" 'smtp_probes_total{target="exim-tls",result="tls_verify_failed"}' &&
    has_series "$scrape_file" 'smtp_probes_total{target="refused",result="connect_refused"}' &&
    has_series "$scrape_file" 'smtp_probe_success{target="example",mx="mx1.test.local"}' &&
    has_series "$scrape_file" 'smtp_probes_total{target="example",mx="mx2.test.local",result="connect_refused"}' &&
    has_series "$scrape_file" 'smtp_probe_success{target="exim-each",address="127.0.0.1"}' &&
    has_series "$scrape_file" 'smtp_banner_hostname_match{target="exim"}'
}
wait_until 20 "a probe of every target of the scenario" _scenario_probed
# The scenario is what the alerts below expect.
assert_metric "$scrape_file" 'smtp_probe_success{target="postfix"}' 1
assert_metric "$scrape_file" 'smtp_banner_hostname_match{target="postfix"}' 1
assert_metric "$scrape_file" 'smtp_banner_hostname_match{target="exim"}' 0
assert_metric "$scrape_file" 'smtp_tls_cert_verified{target="exim-tls"}' 0
assert_metric "$scrape_file" 'smtp_probe_success{target="example",mx="mx1.test.local"}' 1
assert_metric "$scrape_file" 'smtp_probe_success{target="example",mx="mx2.test.local"}' 0
assert_metric "$scrape_file" 'smtp_mx_hosts{target="example"}' 2

log "--- names: the dashboards and rules against the exporter's /metrics"
names_args=(--metrics "$scrape_file" --reasons "$REPO_ROOT/probes/probe_result.cpp"
  --rules "$rules")
node "$checks/check_queries.js" "${names_args[@]}" "${dashboards[@]}" >"$WORKDIR/names.out" 2>&1 ||
  fail "check_queries.js:"$'\n'"$(cat "$WORKDIR/names.out")"
log "ok: $(cat "$WORKDIR/names.out")"

log "--- every panel query and every rule in a real Prometheus"
start_prometheus "$WORKDIR" "$prometheus_port" "127.0.0.1:$EXPORTER_PORT" \
  "$rules/prometheus_rules.yaml" "$rules/prometheus_alerts.yaml"
# The overloaded exporter is the one outcome this scenario cannot bring about.
node "$checks/check_queries.js" "${names_args[@]}" --prometheus "http://127.0.0.1:$prometheus_port" \
  --rate-interval 4s --range 30s --allow-empty instance:smtp_probes_exporter_overloaded:increase5m \
  --wait 40 "${dashboards[@]}" >"$WORKDIR/queries.out" 2>&1 ||
  fail "check_queries.js:"$'\n'"$(cat "$WORKDIR/queries.out")"
log "ok: $(tail -n 1 "$WORKDIR/queries.out")"

log "--- the alerts this scenario raises (pending: their 'for' is minutes)"
expected="SMTPBannerHostnameMismatch warning exim -
SMTPCertificateExpiring critical postfix -
SMTPCertificateNotVerified critical exim-tls -
SMTPMXHostDown warning example mx2.test.local
SMTPServerDown critical refused -"
# alerts_now: one line per alert in Prometheus: name, severity, target, MX host.
alerts_now() {
  curl -sS --max-time 5 -G "http://127.0.0.1:$prometheus_port/api/v1/query" \
    --data-urlencode 'query=ALERTS' |
    jq -r '.data.result[].metric | "\(.alertname) \(.severity) \(.target // "-") \(.mx // "-")"' |
    sort
}
_expected_alerts() { [[ $(alerts_now) == "$expected" ]]; }
if ! poll_until 20 _expected_alerts; then
  fail "alerts in Prometheus:"$'\n'"$(alerts_now)"$'\n'"expected:"$'\n'"$expected"
fi
log "ok: exactly the expected alerts:"$'\n'"$expected"
