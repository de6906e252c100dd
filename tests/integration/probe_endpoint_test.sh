#!/usr/bin/env bash
# probe_endpoint_test.sh BINARY: /probe the way its users run it.
#   1. curl: an admitted target is probed (and its answer passes promtool check metrics); a name
#      that resolves outside its rule's networks, an address no rule admits and an unknown
#      module are refused with the reason; debug=true shows Postfix's side of the dialogue.
#   2. A real Prometheus scrapes /probe through deploy/prometheus/prometheus_probe.yaml (only the
#      targets and the exporter's address replaced) and evaluates a blackbox_exporter user's
#      alert rules, unchanged: probe_success reads 1 for Postfix, BlackboxProbeFailed fires for
#      a closed port and only there, the certificate-expiry alerts fire for the STARTTLS target
#      whose certificate expires in 10 days.
#   3. deploy/prometheus/prometheus_probe_sharded.yaml: Prometheus shards 24 targets over two
#      exporter replicas with hashmod; each target is probed by exactly the replica of its
#      Prometheus job, by no other, and the union is the target list.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: probe_endpoint_test.sh path/to/smtp_exporter}
for tool in prometheus promtool postfix dnsmasq dig jq curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "probe_endpoint_test: $tool is not installed ($INSTALL_HINT): skipped" >&2
    exit 77
  fi
done
test_init probe_endpoint 180
require_binary "$BINARY"

postfix_port=$(pick_port)
closed_port=$(pick_port) # nothing listens: connect_refused
dns_port=$(pick_dns_port)
prometheus_port=$(pick_port)
make_test_ca "$WORKDIR/tls" 10
start_postfix "$WORKDIR" "$postfix_port" --cert "$WORKDIR/tls/server.pem" \
  --key "$WORKDIR/tls/server.key"

shard_targets=()
records=("host-record=mx.test.local,127.0.0.1" "host-record=evil.test.local,10.1.2.3")
for i in $(seq -w 1 24); do
  records+=("host-record=mx$i.test.local,127.0.0.1")
  shard_targets+=("mx$i.test.local:$postfix_port")
done
start_dns "$dns_port" test.local "${records[@]}"

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
dns:
  servers: ["127.0.0.1:$dns_port"]
defaults:
  helo_name: monitor.test.local
modules:
  smtp_starttls:
    tls: starttls
    tls_config: {ca_file: $WORKDIR/tls/ca.pem}
probe:
  allowed_targets:
    - name: loopback
      networks: [127.0.0.1]
      ports: [$postfix_port, $closed_port]
    - name: test names
      hosts: ["*.test.local"]
      networks: [127.0.0.0/8]
      ports: [$postfix_port]
EOF
start_exporter "$BINARY" "$config"

log "--- 1. /probe with curl"
body=$WORKDIR/probe.txt
probe_url="$EXPORTER_URL/probe?target=127.0.0.1:$postfix_port"
assert_eq 200 "$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$probe_url")" \
  "/probe of Postfix"
assert_metric "$body" probe_success 1
assert_metric "$body" smtp_probe_success 1
assert_metric "$body" smtp_quit_code 221
assert_metric "$body" probe_ip_protocol 4
assert_metric "$body" 'smtp_banner_info{hostname="mx.test.local",software="postfix"}' 1
assert_no_series "$body" smtp_probe_success'{target="127.0.0.1:'"$postfix_port"'"}'
lint=$(promtool check metrics <"$body" 2>&1) || fail "promtool check metrics: $lint"
log "ok: promtool check metrics accepts the answer"

refused=$(curl -sS --max-time 10 "$EXPORTER_URL/probe?target=evil.test.local:$postfix_port")
assert_eq 'rule "test names" admits the host "evil.test.local", but it resolves to 10.1.2.3, which is in none of the rule'"'"'s networks' \
  "$refused" "a name resolving outside its rule's networks"
assert_eq 403 "$(http_status "$EXPORTER_URL/probe?target=127.0.0.2:$postfix_port")" \
  "an address no rule admits"
assert_eq 403 "$(http_status "$EXPORTER_URL/probe?target=mx.test.local:25")" \
  "an admitted name on a port its rule does not list"
assert_eq 400 "$(http_status "$EXPORTER_URL/probe?target=127.0.0.1:$postfix_port&module=nope")" \
  "an unknown module"
debug=$(curl -sS --max-time 10 "$probe_url&module=smtp_starttls&debug=true")
assert_contains "$debug" "S: 220 mx.test.local ESMTP Postfix (Debian/GNU)" "debug=true"
assert_contains "$debug" "verdict: success" "debug=true"

log "--- 2. Prometheus scrapes /probe through deploy/prometheus/prometheus_probe.yaml"
rules=$WORKDIR/blackbox_alerts.yml
# As blackbox_exporter users write them (the awesome-prometheus-alerts set, both generations of
# the certificate rule), unchanged but for `for: 0m` being the default.
cat >"$rules" <<'EOF'
groups:
  - name: blackbox
    rules:
      - alert: BlackboxProbeFailed
        expr: probe_success == 0
        for: 0m
        labels: {severity: critical}
        annotations:
          summary: Blackbox probe failed (instance {{ $labels.instance }})
      - alert: BlackboxSslCertificateWillExpireSoon
        expr: probe_ssl_earliest_cert_expiry - time() < 86400 * 30
        for: 0m
        labels: {severity: warning}
      - alert: BlackboxSslCertificateWillExpireSoonRounded
        expr: 3 <= round((last_over_time(probe_ssl_earliest_cert_expiry[10m]) - time()) / 86400, 0.1) < 20
        for: 0m
        labels: {severity: warning}
EOF
promtool check rules "$rules" >/dev/null || fail "promtool check rules $rules"

# The shipped scrape files with only the targets and the exporters' addresses replaced.
replica_ports=()
for index in 0 1; do
  port=$(pick_port)
  spawn "replica-$index" "$WORKDIR/replica-$index.log" "$BINARY" --config.file="$config" \
    --web.listen-address="127.0.0.1:$port" --log.level=debug
  replica_ports+=("$port")
done
_ready() { [[ $(http_status "http://127.0.0.1:$1/-/ready") == 200 ]]; }
for port in "${replica_ports[@]}"; do
  wait_until 15 "the replica on port $port to be ready" _ready "$port"
done
shard_list=$(printf "'%s', " "${shard_targets[@]}")
jobs_of() { sed -n '/^scrape_configs:/,$p' "$1" | tail -n +2; }
prom_config=$WORKDIR/prometheus.yml
{
  printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n'
  printf 'rule_files:\n  - %s\nscrape_configs:\n' "$rules"
  jobs_of "$REPO_ROOT/deploy/prometheus/prometheus_probe.yaml" |
    sed -e "s|\['mx1.example.org:25', 'mx2.example.org:25'\]|['127.0.0.1:$postfix_port', '127.0.0.1:$closed_port']|" \
      -e "s|\['mail.example.org:587'\]|['mx.test.local:$postfix_port']|" \
      -e "s|mail-monitor.example.org:19225|127.0.0.1:$EXPORTER_PORT|"
  jobs_of "$REPO_ROOT/deploy/prometheus/prometheus_probe_sharded.yaml" |
    sed -e "s|\['mx1.example.org:25', 'mx2.example.org:25', 'mx3.example.org:25'\]|[${shard_list%, }]|" \
      -e "s|smtp-exporter-0.smtp-exporter:19225|127.0.0.1:${replica_ports[0]}|" \
      -e "s|smtp-exporter-1.smtp-exporter:19225|127.0.0.1:${replica_ports[1]}|"
} >"$prom_config"
if sed 's/#.*//' "$prom_config" | grep -n 'example\.org\|smtp-exporter-'; then
  fail "a placeholder of the shipped scrape files was not replaced (did they change?)"
fi
check=$(promtool check config "$prom_config" 2>&1) || fail "promtool check config: $check"
start_prometheus_config "$WORKDIR" "$prometheus_port" "$prom_config"

plain=127.0.0.1:$postfix_port
closed=127.0.0.1:$closed_port
starttls=mx.test.local:$postfix_port
_prometheus_sees() { [[ $(prom_query "$prometheus_port" "$1") == "$2" ]]; }
wait_until 30 "Prometheus to read probe_success{instance=\"$plain\"} == 1" \
  _prometheus_sees "probe_success{job=\"smtp_probe\",instance=\"$plain\"}" 1
log "ok: Prometheus reads probe_success{job=\"smtp_probe\",instance=\"$plain\"} == 1"
wait_until 30 "the STARTTLS target's certificate expiry" \
  _prometheus_sees "probe_ssl_earliest_cert_expiry{instance=\"$starttls\"}" \
  "$(cert_not_after_unix "$WORKDIR/tls/server.pem")"
assert_eq 1 "$(prom_query "$prometheus_port" \
  "probe_success{job=\"smtp_probe_submission\",instance=\"$starttls\"}")" "STARTTLS probe_success"
assert_eq 1 "$(prom_query "$prometheus_port" \
  "probe_tls_version_info{instance=\"$starttls\",version=\"TLS 1.3\"}")" "probe_tls_version_info"

# _firing ALERT: the instances ALERT fires for, sorted, on one line.
_firing() {
  prom_query_labels "ALERTS{alertname=\"$1\",alertstate=\"firing\"}" instance | sort | xargs
}
prom_query_labels() {
  curl -sS --max-time 5 -G "http://127.0.0.1:$prometheus_port/api/v1/query" \
    --data-urlencode "query=$1" | jq -r --arg l "$2" '.data.result[] | .metric[$l]'
}
wait_until 30 "BlackboxProbeFailed to fire for $closed" \
  _prometheus_sees "ALERTS{alertname=\"BlackboxProbeFailed\",alertstate=\"firing\",instance=\"$closed\"}" 1
wait_until 30 "the certificate alerts to fire" \
  _prometheus_sees "count(ALERTS{alertname=~\"BlackboxSsl.*\",alertstate=\"firing\"})" 2
assert_eq "$closed" "$(_firing BlackboxProbeFailed)" "BlackboxProbeFailed fires for"
assert_eq "$starttls" "$(_firing BlackboxSslCertificateWillExpireSoon)" \
  "BlackboxSslCertificateWillExpireSoon fires for"
assert_eq "$starttls" "$(_firing BlackboxSslCertificateWillExpireSoonRounded)" \
  "BlackboxSslCertificateWillExpireSoonRounded fires for"

log "--- 3. hashmod: two replicas share ${#shard_targets[@]} targets"
# _all_sharded_scraped: every sharded target has had a successful scrape.
_all_sharded_scraped() {
  [[ $(prom_query "$prometheus_port" 'count(probe_success{job="smtp_probe"} == 1)') == \
    $((${#shard_targets[@]} + 1)) ]] # and the plain Postfix target of part 2
}
wait_until 30 "every sharded target to be probed" _all_sharded_scraped
targets_json=$(curl -sS --max-time 5 "http://127.0.0.1:$prometheus_port/api/v1/targets")
for index in 0 1; do
  jq -r --arg pool "smtp_probe_$index" \
    '.data.activeTargets[] | select(.scrapePool == $pool) | .labels.instance' \
    <<<"$targets_json" | sort >"$WORKDIR/assigned-$index"
  # What the replica probed: its debug line for every /probe request.
  sed -n 's/.*msg="probe request" target=\([^ ]*\) .*/\1/p' "$WORKDIR/replica-$index.log" |
    sort -u >"$WORKDIR/probed-$index"
  count=$(wc -l <"$WORKDIR/probed-$index")
  log "figure: replica $index probed $count targets"
  ((count > 0)) || fail "replica $index probed nothing"
  assert_eq "" "$(diff "$WORKDIR/assigned-$index" "$WORKDIR/probed-$index")" \
    "replica $index probed exactly the targets of its Prometheus job smtp_probe_$index"
done
assert_eq "" "$(comm -12 "$WORKDIR/probed-0" "$WORKDIR/probed-1")" "targets probed by both"
assert_eq "" "$(diff <(printf '%s\n' "${shard_targets[@]}" | sort) \
  <(sort "$WORKDIR/probed-0" "$WORKDIR/probed-1"))" "the union vs the target list"

log "probe_endpoint_test: $_ASSERTIONS assertions passed"
