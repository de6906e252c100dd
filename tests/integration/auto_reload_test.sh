#!/usr/bin/env bash
# auto_reload_test.sh BINARY: --config.auto-reload-interval follows a config file that is swapped
# the way Kubernetes updates a mounted ConfigMap (the file is a symlink through `..data`, and
# `..data` is atomically replaced by a symlink to a new directory):
#   1. a new config is picked up without a signal: its target appears, the old one goes;
#   2. a bad config is refused once (logged once, not once per interval) and the running
#      config stays;
#   3. a good config after it is picked up again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
binary=${1:?usage: auto_reload_test.sh BINARY}
require_binary "$binary"
test_init auto_reload 120

mount=$WORKDIR/configmap
mkdir -p "$mount"
generation=0
# publish CONTENT: what the kubelet does for a ConfigMap update.
publish() {
  generation=$((generation + 1))
  local dir=..2026_12_02_00_00_0$generation
  mkdir "$mount/$dir"
  printf '%s\n' "$1" >"$mount/$dir/smtp_exporter.yml"
  ln -s "$dir" "$mount/..data_tmp"
  mv -T "$mount/..data_tmp" "$mount/..data"
  [[ -L $mount/smtp_exporter.yml ]] || ln -s ..data/smtp_exporter.yml "$mount/smtp_exporter.yml"
}
target_config() {
  printf 'defaults: {interval: 1s, timeout: 500ms}\ntargets:\n  - {name: %s, address: "127.0.0.1:%s"}\n' \
    "$1" "$closed_port"
}

closed_port=$(pick_port) # nothing listens: connect_refused, which is quick and good enough here
publish "$(target_config first)"
start_exporter "$binary" "$mount/smtp_exporter.yml" --config.auto-reload-interval=1s

scraped=$WORKDIR/scrape.txt
# shows_target NAME: the last scrape has the target's probe result.
shows_target() {
  scrape "$EXPORTER_PORT" >"$scraped" || return 1
  has_series "$scraped" "smtp_probe_success{target=\"$1\"}"
}
wait_until 10 "the first target's probes" shows_target first

log "--- a new ConfigMap version: picked up without a signal"
publish "$(target_config second)"
wait_until 10 "the second config's target" shows_target second
assert_no_series "$scraped" 'smtp_probe_success{target="first"}'
assert_metric "$scraped" smtp_exporter_config_last_reload_successful 1

log "--- a bad version: refused once, the running config stays"
publish "targets: [{name: broken, address: no-port-here}]"
reload_failed() {
  scrape "$EXPORTER_PORT" >"$scraped" || return 1
  [[ $(metric_value "$scraped" smtp_exporter_config_last_reload_successful) == 0 ]]
}
wait_until 10 "the failed reload of the bad config" reload_failed
sleep 3 # three more intervals: the same bad content must not be reloaded again
scrape "$EXPORTER_PORT" >"$scraped"
assert_metric "$scraped" 'smtp_probe_success{target="second"}' 0
assert_eq 1 "$(grep -c 'config reload failed' "$EXPORTER_LOG")" "failed reloads logged for one bad version"
assert_contains "$(grep 'config reload failed' "$EXPORTER_LOG")" "missing port" "the logged reason"

log "--- a good version again"
publish "$(target_config third)"
wait_until 10 "the third config's target" shows_target third
assert_metric "$scraped" smtp_exporter_config_last_reload_successful 1
assert_eq 3 "$(grep -c 'config file changed: reloading' "$EXPORTER_LOG")" "reloads triggered by changes"
