#!/usr/bin/env bash
# shard_test.sh BINARY: replicas sharing one config of 300 targets with --shard.count=3 probe
# each target exactly once between them, and the union is the whole config; then 4 replicas,
# and the number of targets that moved is reported (rendezvous hashing: only those the new shard
# takes). A replica without --shard.index takes the ordinal of its host name, as a StatefulSet's
# pods are named (checked in a UTS namespace of its own, where the host name can be set).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
binary=${1:?usage: shard_test.sh BINARY}
require_binary "$binary"
test_init shard 180

closed_port=$(pick_port) # connect_refused: a probe happened, quickly
config=$WORKDIR/smtp_exporter.yml
{
  printf 'defaults: {interval: 1s, timeout: 500ms}\ntargets:\n'
  for i in $(seq 1 300); do printf '  - {name: mx%03d, address: "127.0.0.1:%s"}\n' "$i" "$closed_port"; done
} >"$config"

# run_shards COUNT: starts COUNT replicas and writes each one's probed targets to
# WORKDIR/COUNT/INDEX (one name a line, sorted), once every replica has probed all it owns.
run_shards() {
  local count=$1 index port pids=() ports=()
  mkdir -p "$WORKDIR/$count"
  for ((index = 0; index < count; index++)); do
    port=$(pick_port)
    spawn "shard-$index-of-$count" "$WORKDIR/$count/$index.log" "$binary" \
      --config.file="$config" --web.listen-address="127.0.0.1:$port" \
      --shard.count="$count" --shard.index="$index"
    pids+=("$SPAWNED_PID")
    ports+=("$port")
  done
  for ((index = 0; index < count; index++)); do
    wait_until 20 "shard $index of $count to probe every target it owns" \
      _all_owned_probed "${ports[index]}" "$WORKDIR/$count/$index"
    assert_metric "$WORKDIR/$count/$index.prom" \
      "smtp_exporter_shard_info{index=\"$index\",count=\"$count\"}" 1
  done
  for pid in "${pids[@]}"; do stop_group "$pid" shard; done
}
# _all_owned_probed PORT OUT: the replica's smtp_exporter_targets equals the targets it shows.
_all_owned_probed() {
  scrape "$1" >"$2.prom" 2>/dev/null || return 1
  label_value "$2.prom" smtp_probe_success target | sort >"$2"
  local owned
  owned=$(metric_value "$2.prom" smtp_exporter_targets)
  [[ -n $owned && $owned -gt 0 && $(wc -l <"$2") -eq $owned ]]
}

log "--- three replicas"
run_shards 3
sort "$WORKDIR"/3/[0-9] >"$WORKDIR/union3"
assert_eq 300 "$(wc -l <"$WORKDIR/union3")" "targets probed by the three replicas together"
assert_eq 300 "$(sort -u "$WORKDIR/union3" | wc -l)" "distinct targets (none probed twice)"
assert_eq "" "$(diff <(grep -o 'mx[0-9]*' "$config" | sort) "$WORKDIR/union3")" "union vs the config"

log "--- four replicas"
run_shards 4
moved=0
for ((old = 0; old < 3; old++)); do
  # Targets shard `old` had that it no longer has under 4 shards.
  moved=$((moved + $(comm -23 "$WORKDIR/3/$old" "$WORKDIR/4/$old" | wc -l)))
done
gained=$(wc -l <"$WORKDIR/4/3")
log "figure: 3 -> 4 shards moved $moved of 300 targets (the new shard owns $gained)"
assert_eq "$gained" "$moved" "targets moved, all of them to the new shard"

log "--- the index from the host name (a StatefulSet pod's ordinal)"
if unshare --uts true 2>/dev/null; then
  port=$(pick_port)
  # shellcheck disable=SC2016 # expanded by the inner shell
  spawn shard-by-hostname "$WORKDIR/hostname.log" unshare --uts sh -c \
    'hostname smtp-exporter-1 && exec "$0" "$@"' "$binary" --config.file="$config" \
    --web.listen-address="127.0.0.1:$port" --shard.count=3
  wait_until 20 "the replica named smtp-exporter-1" _all_owned_probed "$port" "$WORKDIR/by_hostname"
  assert_metric "$WORKDIR/by_hostname.prom" 'smtp_exporter_shard_info{index="1",count="3"}' 1
  assert_eq "" "$(diff "$WORKDIR/3/1" "$WORKDIR/by_hostname")" "its targets vs shard 1's"
else
  log "no UTS namespace here: the host-name ordinal is covered by the unit tests only"
fi
