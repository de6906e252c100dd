#!/usr/bin/env bash
# reload_test.sh BINARY: configuration reloads (SIGHUP and POST /-/reload), --config.check, and
# SIGTERM. A bad config must be refused and the old one kept running; a good one must replace it
# at once (the series of a removed target gone); SIGTERM must end the process quickly, status 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: reload_test.sh path/to/smtp_exporter}
test_init reload 180
require_binary "$BINARY"

postfix_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port"

config=$WORKDIR/smtp_exporter.yml
good_a=$WORKDIR/good_a.yml
good_b=$WORKDIR/good_b.yml
bad=$WORKDIR/bad.yml
cat >"$good_a" <<EOF
defaults:
  interval: 2s
  timeout: 1s
  helo_name: monitor.test.local
targets:
  - name: a
    address: 127.0.0.1:$postfix_port
EOF
# The unknown key is on line 7.
cat >"$bad" <<EOF
defaults:
  interval: 2s
  timeout: 1s
targets:
  - name: a
    address: 127.0.0.1:$postfix_port
    bogus_key: 1
EOF
assert_eq "    bogus_key: 1" "$(sed -n 7p "$bad")" "line 7 of the bad config"
sed 's/name: a$/name: b/' "$good_a" >"$good_b"

s=$WORKDIR/metrics.txt
take_scrape() { scrape "$EXPORTER_PORT" >"$s.new" && mv "$s.new" "$s"; }
# has_target_series FILE NAME: some series carries target="NAME".
has_target_series() { grep -v '^#' "$1" | grep -Eq "[{,]target=\"$2\"[,}]"; }

cp "$good_a" "$config"
start_exporter "$BINARY" "$config"
_a_probed() { take_scrape && has_series "$s" 'smtp_last_probe_timestamp_seconds{target="a"}'; }
wait_until 15 'a first probe of target a' _a_probed
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 1
assert_metric "$s" 'smtp_probe_success{target="a"}' 1
reload_ts_start=$(metric_value "$s" 'smtp_exporter_config_last_reload_success_timestamp_seconds')

log "--- SIGHUP with a bad config: refused, the old config keeps running"
cp "$bad" "$config"
kill -HUP "$EXPORTER_PID"
_reload_failed() {
  take_scrape && has_series "$s" 'smtp_exporter_config_last_reload_successful' &&
    [[ $(metric_value "$s" 'smtp_exporter_config_last_reload_successful') == 0 ]]
}
wait_until 5 'smtp_exporter_config_last_reload_successful == 0 after SIGHUP' _reload_failed
pid_alive "$EXPORTER_PID" || fail "the exporter exited after SIGHUP with a bad config"
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 0
assert_metric "$s" 'smtp_exporter_config_last_reload_success_timestamp_seconds' "$reload_ts_start"
assert_metric "$s" 'smtp_exporter_targets' 1
_log_names_key() { grep -q bogus_key "$EXPORTER_LOG"; }
wait_until 5 "the exporter's log to name the bad key (bogus_key)" _log_names_key
log "ok: the log says: $(grep -m1 bogus_key "$EXPORTER_LOG")"
before=$(metric_value "$s" 'smtp_last_probe_timestamp_seconds{target="a"}')
_a_probed_again() {
  take_scrape &&
    num_cmp "$(metric_value "$s" 'smtp_last_probe_timestamp_seconds{target="a"}')" '>' "$before"
}
wait_until 10 "target a to be probed again after the failed reload" _a_probed_again
assert_metric "$s" 'smtp_probe_success{target="a"}' 1
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 0

log "--- POST /-/reload with the bad config: an HTTP error, still the old config"
status=$(http_status "$EXPORTER_URL/-/reload" -X POST)
[[ $status == [45][0-9][0-9] ]] ||
  fail "POST /-/reload with a bad config: expected a 4xx/5xx status, got '$status'"
log "ok: POST /-/reload answered $status"
pid_alive "$EXPORTER_PID" || fail "the exporter exited after POST /-/reload with a bad config"
take_scrape
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 0
assert_metric "$s" 'smtp_probe_success{target="a"}' 1

log "--- POST /-/reload with a good config that has target b instead of a"
cp "$good_b" "$config"
status=$(http_status "$EXPORTER_URL/-/reload" -X POST)
assert_eq 200 "$status" "POST /-/reload with a good config"
take_scrape
assert_metric "$s" 'smtp_exporter_config_last_reload_successful' 1
assert_metric "$s" 'smtp_exporter_config_last_reload_success_timestamp_seconds' '>' \
  "$reload_ts_start"
assert_metric "$s" 'smtp_exporter_targets' 1
if has_target_series "$s" a; then
  fail "target a left the config, but series with target=\"a\" remain after the reload:" \
    $'\n'"$(grep -E '[{,]target="a"[,}]' "$s")"
fi
log "ok: no series with target=\"a\" right after the reload"
_b_probed() { take_scrape && has_series "$s" 'smtp_last_probe_timestamp_seconds{target="b"}'; }
wait_until 15 'a first probe of target b' _b_probed
assert_metric "$s" 'smtp_probe_success{target="b"}' 1
if has_target_series "$s" a; then
  fail "series with target=\"a\" came back:"$'\n'"$(grep -E '[{,]target="a"[,}]' "$s")"
fi

log "--- --config.check"
rc=0
timeout 10 "$BINARY" --config.file="$bad" --config.check >"$WORKDIR/check_bad.out" \
  2>"$WORKDIR/check_bad.err" || rc=$?
err=$(cat "$WORKDIR/check_bad.err")
assert_eq 2 "$rc" "exit status of --config.check on the bad config (stderr: $err)"
assert_contains "$err" "$bad" "stderr of --config.check (the file)"
assert_contains "$err" "bogus_key" "stderr of --config.check (the key)"
[[ $err =~ (:7([^0-9]|$)|line[\ =:\"]*7([^0-9]|$)) ]] ||
  fail "stderr of --config.check: expected line 7 (as FILE:7 or 'line 7'), got: $err"
log "ok: stderr of --config.check names line 7"
rc=0
timeout 10 "$BINARY" --config.file="$good_b" --config.check >"$WORKDIR/check_good.out" \
  2>"$WORKDIR/check_good.err" || rc=$?
assert_eq 0 "$rc" \
  "exit status of --config.check on a good config (stderr: $(cat "$WORKDIR/check_good.err"))"

log "--- the threads: named, and those that load configs and render pages yield to the probes"
# /proc/PID/task/TID/stat: field 2 is the name in parentheses, field 19 the niceness.
thread_niceness() {
  local task
  for task in /proc/"$EXPORTER_PID"/task/*; do
    if [[ $(<"$task/comm") == "$1" ]]; then awk '{sub(/^.*\) /, ""); print $17}' "$task/stat"; fi
  done
}
main_niceness=$(thread_niceness "$(<"/proc/$EXPORTER_PID/comm")")
[[ $main_niceness =~ ^-?[0-9]+$ ]] || fail "no niceness read for the probe thread: '$main_niceness'"
assert_eq smtp_exporter "$(<"/proc/$EXPORTER_PID/comm")" "the process's (main thread's) name"
assert_eq "$main_niceness" "$(thread_niceness http)" "the http thread's niceness"
for role in render config; do
  assert_eq "$((main_niceness + 10 > 19 ? 19 : main_niceness + 10))" "$(thread_niceness "$role")" \
    "the $role thread's niceness (the probe thread's is $main_niceness)"
done

log "--- SIGTERM: exit status 0 within 1 s"
kill -TERM "$EXPORTER_PID"
poll_until 1 _not pid_alive "$EXPORTER_PID" || fail "the exporter still runs 1 s after SIGTERM"
rc=0
wait "$EXPORTER_PID" || rc=$?
assert_eq 0 "$rc" "the exporter's exit status after SIGTERM"

log "reload_test: $_ASSERTIONS assertions passed"
