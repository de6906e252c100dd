#!/usr/bin/env bash
# resolv_conf_test.sh BINARY: a reload reads /etc/resolv.conf again (it was read once, at start,
# and never again). Runs in network and mount namespaces of its own, so that a dnsmasq can
# answer on 127.0.0.1:53 and a private file can be mounted over /etc/resolv.conf without
# touching the machine's:
#   1. resolv.conf names 127.0.0.2 (nobody answers there): the target, given by name and without
#      a `dns` section, fails with resolve_error or resolve_timeout;
#   2. resolv.conf is rewritten to name 127.0.0.1, where dnsmasq knows the name; SIGHUP;
#   3. the target's probes succeed.
# Exits 77 (skipped) where namespaces cannot be made.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
binary=${1:?usage: resolv_conf_test.sh BINARY}
require_binary "$binary"

if [[ -z ${SMTP_IN_NAMESPACE:-} ]]; then
  require_root
  if ! unshare --net --mount true 2>/dev/null; then
    echo "resolv_conf_test: cannot create network and mount namespaces here: skipped" >&2
    exit 77
  fi
  exec unshare --net --mount --propagation private env SMTP_IN_NAMESPACE=1 bash "$0" "$@"
fi

ip link set lo up
test_init resolv_conf 120

# Postfix first: with a resolv.conf whose server is silent, its own start-up lookups stall.
smtp_port=$(pick_port)
start_postfix "$WORKDIR/postfix" "$smtp_port"
start_dns 53 test.local "host-record=mail.test.local,127.0.0.1"

resolv=$WORKDIR/resolv.conf
echo "nameserver 127.0.0.2" >"$resolv"
mount --bind "$resolv" /etc/resolv.conf
_CLEANUP+=("umount /etc/resolv.conf")

config=$WORKDIR/smtp_exporter.yml
cat >"$config" <<EOF
defaults:
  interval: 1s
  timeout: 800ms
targets:
  - name: by-name
    address: mail.test.local:$smtp_port
EOF
start_exporter "$binary" "$config"

scraped=$WORKDIR/scrape.txt
# resolve_failures: the scrape shows a probe that failed to resolve the name.
resolve_failures() {
  scrape "$EXPORTER_PORT" >"$scraped" || return 1
  (($(metric_count "$scraped" 'smtp_probes_total{result="resolve_error"}') +
    $(metric_count "$scraped" 'smtp_probes_total{result="resolve_timeout"}') > 0))
}
log "--- resolv.conf names a server that does not answer: the name does not resolve"
wait_until 20 "a resolve failure with resolv.conf naming 127.0.0.2" resolve_failures
assert_metric "$scraped" 'smtp_probe_success{target="by-name"}' 0
assert_no_series "$scraped" 'smtp_probes_total{result="success"}'

log "--- resolv.conf now names 127.0.0.1, where the name is known; SIGHUP"
# The same file (and inode) as the one mounted over /etc/resolv.conf.
echo "nameserver 127.0.0.1" >"$resolv"
kill -HUP "$EXPORTER_PID"
# last_probe_succeeded: the last probe of the target succeeded.
last_probe_succeeded() {
  scrape "$EXPORTER_PORT" >"$scraped" || return 1
  [[ $(metric_value "$scraped" 'smtp_probe_success{target="by-name"}') == 1 ]]
}
wait_until 20 "a successful probe after the reload" last_probe_succeeded
assert_metric "$scraped" 'smtp_probes_total{result="success"}' '>=' 1
assert_metric "$scraped" 'smtp_banner_info{target="by-name",software="postfix"}' 1
log "ok: the reload read the new resolv.conf"
