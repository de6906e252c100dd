#!/usr/bin/env bash
# systemd_test.sh BINARY: deploy/systemd/smtp_exporter.service, checked offline (nothing is
# installed or started):
#   - `systemd-analyze verify` passes on it, with ExecStart pointed at BINARY (verify needs the
#     program to exist; the unit's own path must be where `cmake --install` puts it)
#   - `systemd-analyze security --offline=yes` rates its exposure below 2.0 ("OK")
#   - the sandboxing the unit promises is there, and SIGHUP is its ExecReload
#   - the flags of the EnvironmentFile are ones `smtp_exporter --help` knows, and the port 19225
# Exits 77 without systemd-analyze.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: systemd_test.sh BINARY}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd_test: systemd-analyze is missing: skipped (apt-get install systemd)" >&2
  exit 77
fi
test_init systemd 60
require_binary "$binary"
unit=$REPO_ROOT/deploy/systemd/smtp_exporter.service
defaults=$REPO_ROOT/deploy/systemd/smtp_exporter.default
installed=/usr/local/bin/smtp_exporter

# unit_values KEY: the values of KEY= in the unit, one a line.
unit_values() { sed -n "s/^$1=//p" "$unit"; }

exec_start=$(unit_values ExecStart)
assert_eq "$installed --config.file=/etc/smtp_exporter/smtp_exporter.yml \$SMTP_EXPORTER_ARGS" \
  "$exec_start" "ExecStart (the binary where cmake --install puts it, the config, the flags)"
install_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$(dirname "$binary")/CMakeCache.txt" 2>/dev/null || true)
if [[ -n $install_prefix ]]; then
  assert_eq "$installed" "$install_prefix/bin/smtp_exporter" "cmake --install's path of the binary"
fi
assert_eq "/bin/kill -HUP \$MAINPID" "$(unit_values ExecReload)" "ExecReload sends SIGHUP"
assert_eq /etc/default/smtp_exporter "$(unit_values EnvironmentFile)" "EnvironmentFile"

# verify, on a copy whose ExecStart names the binary under test (same file name, so the unit's
# name and everything else stay as they are).
mkdir -p "$WORKDIR/unit"
sed "s|^ExecStart=$installed |ExecStart=$(realpath "$binary") |" "$unit" \
  >"$WORKDIR/unit/smtp_exporter.service"
if ! out=$(systemd-analyze verify "$WORKDIR/unit/smtp_exporter.service" 2>&1) || [[ -n $out ]]; then
  fail "systemd-analyze verify: $out"
fi
log "ok: systemd-analyze verify: no complaints"

security=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for smtp_exporter.service: \([0-9.]*\) .*/\1/p' <<<"$security")
[[ -n $score ]] || fail "systemd-analyze security printed no exposure level: $security"
num_cmp "$score" "<" 2.0 || fail "exposure level $score is not below 2.0:"$'\n'"$(grep '✗' <<<"$security")"
assert_contains "$security" "$score OK" "systemd-analyze security's verdict"
log "systemd-analyze security --offline=yes: exposure $score"

for setting in DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  NoNewPrivileges=yes CapabilityBoundingSet= MemoryDenyWriteExecute=yes \
  SystemCallFilter=@system-service "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"; do
  grep -qxF "$setting" "$unit" || fail "the unit lacks $setting"
done
log "ok: the unit has the sandboxing settings it promises"
nofile=$(unit_values LimitNOFILE)
((nofile >= 16384)) || fail "LimitNOFILE=$nofile is too low for thousands of targets"

# The EnvironmentFile's flags: known to the binary, and the exporter's port.
args=$(bash -c 'set -a; source "$1"; printf "%s" "$SMTP_EXPORTER_ARGS"' _ "$defaults")
assert_contains "$args" "--web.listen-address=:19225" "SMTP_EXPORTER_ARGS of $defaults"
help=$("$binary" --help 2>&1)
for flag in $args; do
  flag=${flag%%=*}
  grep -qE -- "(^|[[:space:]])$flag([[:space:]]|,|=|$)" <<<"$help" ||
    fail "$defaults passes $flag, which smtp_exporter --help does not list"
done
log "ok: every flag of SMTP_EXPORTER_ARGS is one smtp_exporter knows"
