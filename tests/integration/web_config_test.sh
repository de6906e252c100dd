#!/usr/bin/env bash
# --web.config.file end to end: TLS 1.2 and 1.3, client certificates (RequireAndVerifyClientCert),
# basic auth with bcrypt hashes from htpasswd, extra headers, /-/healthy open, plain HTTP to the
# TLS port refused cleanly, a real Prometheus scraping with basic_auth and tls_config, and the
# file changed while running (a new password works; a bad file keeps the last good one). A bad
# file at start: exit 2 with file, line and key. Needs curl, openssl, htpasswd (apache2-utils)
# and prometheus: exit 77 without.
#
#   tests/integration/web_config_test.sh BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: $0 BINARY}
for tool in curl openssl htpasswd prometheus jq; do
  command -v "$tool" >/dev/null || {
    echo "SKIP: $tool is not installed ($INSTALL_HINT)" >&2
    exit 77
  }
done
test_init web_config 120
require_binary "$binary"

tls=$WORKDIR/tls
make_test_ca "$tls"
# A client certificate from the same CA, for Prometheus and curl.
{
  openssl req -new -newkey rsa:2048 -nodes -subj /CN=prometheus \
    -keyout "$tls/client.key" -out "$tls/client.csr" &&
    printf '%s\n' "extendedKeyUsage=clientAuth" >"$tls/client.ext" &&
    openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 2 -sha256 -extfile "$tls/client.ext" -out "$tls/client.pem"
} >"$tls/client.out" 2>&1 || fail "openssl could not make a client certificate: $(cat "$tls/client.out")"

bcrypt() { htpasswd -nbBC 10 "$1" "$2" | cut -d: -f2-; }
hash_one=$(bcrypt prometheus first-secret)
hash_two=$(bcrypt prometheus second-secret)

web=$WORKDIR/web.yml
# web_config HASH: the file, written in one step (a temp file renamed over it).
web_config() {
  cat >"$web.next" <<YAML
tls_server_config:
  cert_file: tls/server.pem
  key_file: tls/server.key
  client_ca_file: tls/ca.pem
  client_auth_type: RequireAndVerifyClientCert
  cipher_suites:
    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prometheus: '$1'
YAML
  mv "$web.next" "$web"
}
web_config "$hash_one"
printf 'targets: []\n' >"$WORKDIR/smtp.yml"

# A bad file at start: exit 2, naming file, line and key.
printf 'basic_auth_users:\n  prometheus: plain-text\n' >"$WORKDIR/bad.yml"
rc=0
"$binary" --config.file="$WORKDIR/smtp.yml" --web.listen-address=127.0.0.1:0 \
  --web.config.file="$WORKDIR/bad.yml" >"$WORKDIR/bad.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "exit code with a bad web config"
assert_contains "$(cat "$WORKDIR/bad.log")" "$WORKDIR/bad.yml:2: basic_auth_users.prometheus: not a bcrypt hash" "start-up error"

rc=0
"$binary" --config.check --config.file="$WORKDIR/smtp.yml" --web.config.file="$WORKDIR/bad.yml" \
  >"$WORKDIR/check.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "--config.check exit code with a bad web config"
"$binary" --config.check --config.file="$WORKDIR/smtp.yml" --web.config.file="$web" \
  >"$WORKDIR/check.log" 2>&1 || fail "--config.check refused the good web config: $(cat "$WORKDIR/check.log")"

port=$(pick_port)
spawn exporter "$WORKDIR/exporter.log" "$binary" --config.file="$WORKDIR/smtp.yml" \
  --web.listen-address="127.0.0.1:$port" --web.config.file="$web" --log.level=debug
EXPORTER_PID=$SPAWNED_PID
url=https://127.0.0.1:$port
client_tls=(--cacert "$tls/ca.pem" --cert "$tls/client.pem" --key "$tls/client.key")
_healthy() {
  pid_alive "$EXPORTER_PID" || fail "the exporter exited during start-up: $(tail -5 "$WORKDIR/exporter.log")"
  [[ $(http_status "$url/-/healthy" "${client_tls[@]}") == 200 ]]
}
wait_until 15 "the exporter to answer /-/healthy over TLS" _healthy

# Basic auth: 401 without or with wrong credentials, 200 with the right ones; /-/healthy open.
headers=$(curl -sS -o /dev/null -D - --max-time 5 "${client_tls[@]}" "$url/metrics")
assert_contains "$headers" "HTTP/1.1 401" "401 without credentials"
assert_contains "$headers" 'WWW-Authenticate: Basic realm="smtp_exporter"' "realm"
assert_contains "$headers" "X-Content-Type-Options: nosniff" "extra header on a 401"
assert_eq 401 "$(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:wrong)" "wrong password"
assert_eq 401 "$(http_status "$url/metrics" "${client_tls[@]}" -u nobody:first-secret)" "unknown user"
assert_eq 200 "$(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:first-secret)" "right password"
assert_eq 200 "$(http_status "$url/-/healthy" "${client_tls[@]}")" "/-/healthy without credentials"
assert_eq 401 "$(http_status "$url/-/ready" "${client_tls[@]}")" "/-/ready without credentials"
body=$(curl -fsS --max-time 5 "${client_tls[@]}" -u prometheus:first-secret "$url/metrics")
assert_contains "$body" "process_start_time_seconds" "/metrics over TLS"

# TLS 1.2 (with a suite of the file) and TLS 1.3.
for version in 1.2 1.3; do
  out=$(curl -sS -v -o /dev/null -w '%{http_code}' --max-time 5 "${client_tls[@]}" \
    -u prometheus:first-secret --tlsv"$version" --tls-max "$version" "$url/metrics" 2>&1)
  assert_contains "$out" "200" "TLS $version answer"
  assert_contains "$out" "SSL connection using TLSv$version" "TLS $version negotiated"
done
out=$(curl -sS -v -o /dev/null --max-time 5 "${client_tls[@]}" -u prometheus:first-secret \
  --tls-max 1.2 --ciphers ECDHE-RSA-AES256-SHA "$url/metrics" 2>&1 || true)
assert_contains "$out" "alert handshake failure" "a TLS 1.2 suite outside cipher_suites is refused"

# Client certificates: without one, no answer; plain HTTP to the TLS port: closed, logged at
# debug, and the server goes on.
assert_eq 000 "$(http_status "$url/-/healthy" --cacert "$tls/ca.pem")" "no client certificate"
assert_eq 000 "$(http_status "http://127.0.0.1:$port/metrics")" "plain HTTP to the TLS port"
wait_until 5 "a debug line for the failed handshakes" grep -q 'msg="TLS handshake failed"' "$WORKDIR/exporter.log"
pid_alive "$EXPORTER_PID" || fail "the exporter died"
assert_eq 200 "$(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:first-secret)" "still serving"

# A real Prometheus scrapes with basic_auth and tls_config.
cat >"$WORKDIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: smtp_exporter
    scheme: https
    basic_auth:
      username: prometheus
      password: first-secret
    tls_config:
      ca_file: $tls/ca.pem
      cert_file: $tls/client.pem
      key_file: $tls/client.key
    static_configs:
      - targets: ['127.0.0.1:$port']
YAML
prom_port=$(pick_port)
start_prometheus_config "$WORKDIR" "$prom_port" "$WORKDIR/prometheus.yml"
_up() { [[ $(prom_query "$prom_port" 'up{job="smtp_exporter"}') == 1 ]]; }
wait_until 20 "Prometheus to scrape the exporter over TLS with basic auth (up == 1)" _up
stop_prometheus

# The file changes while running: the new password works, the old one no longer does.
web_config "$hash_two"
_second_works() {
  [[ $(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:second-secret) == 200 ]]
}
wait_until 10 "the new password to be accepted" _second_works
assert_eq 401 "$(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:first-secret)" "old password after the change"

# A bad new file: logged, and the last good one stays.
printf 'tls_server_config:\n  cert_file: tls/server.pem\n  key_file: tls/server.key\n  colour: blue\n' >"$web.next"
mv "$web.next" "$web"
# The file is checked when a connection or request comes (at most once a second), as
# exporter-toolkit reads it per request.
_bad_reported() {
  http_status "$url/-/healthy" "${client_tls[@]}" >/dev/null
  grep -q 'web config reload failed, keeping the last good one' "$WORKDIR/exporter.log"
}
wait_until 10 "the bad file to be reported" _bad_reported
assert_contains "$(cat "$WORKDIR/exporter.log")" "$web:4: tls_server_config.colour: unknown key" "reload error names file, line and key"
assert_eq 200 "$(http_status "$url/metrics" "${client_tls[@]}" -u prometheus:second-secret)" "last good file kept"
log "PASS: web_config_test"
