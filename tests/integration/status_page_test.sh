#!/usr/bin/env bash
# status_page_test.sh BINARY: the status page at / in a real browser (headless Chromium), with
# the exporter probing a real Postfix over STARTTLS (up, certificate expiry), a closed port
# (failing: reason and hint shown) and a fake server whose greeting and replies carry HTML
# (`<script>`, `<img onerror>`): the rendered DOMs of / and of that endpoint's own page (its
# dialogues) must hold the text, never an element made of it. Also the headers (Content-Security-Policy, nosniff), ?q=, HEAD, 404 and 405.
# Saves a screenshot of / in the build directory (STATUS_PAGE_PNG overrides where) and prints
# its path. Exit 77 if chromium is missing (tests/support/install_deps.sh test installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: status_page_test.sh path/to/smtp_exporter}
CHROMIUM=$(command -v chromium || true)
if [[ -z $CHROMIUM ]]; then
  echo "SKIP: chromium is not installed ($INSTALL_HINT)" >&2
  exit 77
fi
test_init status_page 120
require_binary "$BINARY"
require_fake_smtp "$BINARY"
BINARY=$(realpath "$BINARY")
PNG=${STATUS_PAGE_PNG:-$(dirname "$BINARY")/status_page.png}

postfix_port=$(pick_port)
closed_port=$(pick_port)
ca=$WORKDIR/ca
make_test_ca "$ca" 30
start_postfix "$WORKDIR" "$postfix_port" --cert "$ca/server.pem" --key "$ca/server.key"
start_fake_smtp hostile <<'SCRIPT'
send 220 <script>alert(1)</script><img src=x onerror=alert(2)> ESMTP\r\n
expect EHLO
send 554 5.7.1 <script>alert(3)</script> go away\r\n
expect HELO
send 554 5.7.1 <img src=x onerror=alert(4)>\r\n
close
SCRIPT
hostile_port=$FAKE_PORT

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<YAML
defaults:
  interval: 1s
  timeout: 800ms
  helo_name: monitor.test.local
targets:
  - name: postfix
    address: 127.0.0.1:$postfix_port
    tls: starttls
    tls_config: {ca_file: $ca/ca.pem, server_name: mx.test.local}
  - name: closed
    address: 127.0.0.1:$closed_port
  - name: hostile
    address: 127.0.0.1:$hostile_port
YAML
start_exporter "$BINARY" "$config"

# --- the HTML as served: headers, three probed rows, a latency line drawn.
page=$WORKDIR/page.html
headers=$WORKDIR/page.headers
fetch_page() { curl -fsS --max-time 5 -D "$headers" -o "$page" "$EXPORTER_URL/$1"; }
_all_probed() {
  fetch_page "" &&
    (($(grep -c '<tr class="\(up\|failing\)">' "$page") == 3)) &&
    grep -q '<polyline' "$page"
}
wait_until 20 "three probed rows on / and a latency line" _all_probed
served_headers=$(tr -d '\r' <"$headers")
assert_contains "$served_headers" \
  "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:" "CSP"
assert_contains "$served_headers" "X-Content-Type-Options: nosniff" "nosniff header"
assert_contains "$served_headers" "Content-Type: text/html; charset=utf-8" "content type"
assert_eq 405 "$(http_status "$EXPORTER_URL/" -X POST)" "POST /"
assert_eq 405 "$(http_status "$EXPORTER_URL/target?name=postfix" -X DELETE)" "DELETE /target"
assert_eq 200 "$(http_status "$EXPORTER_URL/" -I)" "HEAD /"
assert_eq 404 "$(http_status "$EXPORTER_URL/target?name=nosuch")" "unknown endpoint"
fetch_page "?q=closed"
assert_eq 1 "$(grep -c '<tr class=' "$page")" "rows for ?q=closed"
fetch_page "?q=FAILING"
assert_eq 2 "$(grep -c '<tr class="failing">' "$page")" "failing rows for ?q=FAILING"
assert_eq 0 "$(grep -c '<tr class="up">' "$page")" "up rows for ?q=FAILING"

# --- Chromium: the DOM it built (no script can run: the page has none, and CSP forbids them).
_LOGS+=("$WORKDIR/chromium.log")
chromium_run() {
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$WORKDIR/chromium.XXXXXX")" "$@" 2>>"$WORKDIR/chromium.log"
}
dom=$WORKDIR/dom.html
chromium_run --dump-dom "$EXPORTER_URL/" >"$dom"
[[ -s $dom ]] || fail "chromium dumped no DOM for /"
# row_of NAME: the <tr> of target NAME in the DOM, on one line.
row_of() {
  tr '\n' ' ' <"$dom" | grep -o "<tr class=\"[a-z]*\"><td class=\"target\"><a [^>]*>$1</a>.*" |
    sed 's|</tr>.*|</tr>|' || true
}
postfix_row=$(row_of postfix)
closed_row=$(row_of closed)
hostile_row=$(row_of hostile)
assert_contains "$postfix_row" '<tr class="up">' "postfix is up"
assert_contains "$postfix_row" '<td class="banner-host">mx.test.local</td>' "postfix banner host"
assert_contains "$postfix_row" '<td class="software">postfix</td>' "postfix software"
assert_contains "$postfix_row" ' ms</td>' "postfix greeting latency"
assert_contains "$postfix_row" '<svg class="chart"' "postfix chart"
# The server certificate is valid for 30 days from its making: 29 whole days are left.
assert_contains "$postfix_row" '<td class="cert">29 days</td>' "postfix certificate expiry"
assert_contains "$closed_row" '<tr class="failing">' "closed port is failing"
assert_contains "$closed_row" '<span class="reason">connect_refused</span>' "closed port reason"
assert_contains "$closed_row" '<small class="hint">Hint: ' "closed port hint"
assert_contains "$hostile_row" '<span class="reason">ehlo_rejected</span>' "hostile reason"
order=$(grep -o '<td class="target"><a [^>]*>[a-z]*</a>' "$dom" | sed 's|.*>\([a-z]*\)</a>|\1|' |
  tr '\n' ' ')
assert_eq "closed hostile postfix " "$order" "row order (failing first, then by name)"
assert_eq 0 "$(grep -ci '<script' "$dom" || true)" "script elements in the DOM of /"
assert_eq 0 "$(grep -ci '<img' "$dom" || true)" "img elements in the DOM of /"
for link in /metrics /-/healthy /-/ready; do
  assert_contains "$(cat "$dom")" "href=\"$link\"" "link to $link"
done

# The hostile endpoint's own page: its dialogues show what the server sent, as text.
detail_dom=$WORKDIR/detail_dom.html
chromium_run --dump-dom "$EXPORTER_URL/target?name=hostile" >"$detail_dom"
detail=$(cat "$detail_dom")
assert_contains "$detail" \
  'S: 220 &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; ESMTP' \
  "the hostile greeting, as text, in the dialogue"
assert_contains "$detail" '&lt;img src=x onerror=alert(4)&gt;' "the reply to HELO, as text"
assert_contains "$detail" '<ul class="hints"><li>' "the hints"
assert_eq 0 "$(grep -ci '<script' "$detail_dom" || true)" "script elements in the DOM of /target"
assert_eq 0 "$(grep -ci '<img' "$detail_dom" || true)" "img elements in the DOM of /target"

# --- the screenshot (an artifact of the run).
rm -f "$PNG"
chromium_run --hide-scrollbars --window-size=1280,420 --screenshot="$PNG" "$EXPORTER_URL/" \
  >/dev/null
[[ -s $PNG ]] || fail "chromium wrote no screenshot at $PNG"
# The signature, then width and height from the IHDR chunk.
assert_eq "89504e470d0a1a0a" "$(od -An -tx1 -N8 "$PNG" | tr -d ' \n')" "PNG signature"
assert_eq "00000500000001a4" "$(od -An -tx1 -j16 -N8 "$PNG" | tr -d ' \n')" "PNG is 1280x420"
log "screenshot: $PNG"
echo "screenshot: $PNG"
log "PASS"
