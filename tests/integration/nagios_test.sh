#!/usr/bin/env bash
# nagios_test.sh BINARY: a real Nagios 4 runs `smtp_exporter check` through the command
# definition of deploy/nagios/smtp_exporter.cfg, against real Postfix (OK; and STARTTLS with a
# certificate that expires in 10 days: -D 30,7 WARNING, -D 30,14 CRITICAL, as check_smtp
# judges: 9 whole days left is at most 14; the same over implicit TLS), a closed port (CRITICAL), a fake server that answers
# 500 to QUIT (WARNING) and one that greets after 1.5 s (-W 0.5: WARNING).
# What Nagios recorded is read from its own status.dat: current_state, plugin_output,
# long_plugin_output, performance_data. Then `icinga2 daemon -C` validates the Icinga 2
# CheckCommand of deploy/nagios/smtp_exporter.conf with Services that use it, next to the ITL's
# check_smtp command with the same variables.
# Exit 77 if nagios4 or icinga2 is missing (tests/support/install_deps.sh test installs them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: nagios_test.sh path/to/smtp_exporter}
for tool in nagios4 icinga2; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed ($INSTALL_HINT)" >&2
    exit 77
  fi
done
test_init nagios 120
require_binary "$BINARY"
require_fake_smtp "$BINARY"
BINARY=$(realpath "$BINARY")

ca=$WORKDIR/ca
make_test_ca "$ca" 10
postfix_port=$(pick_port)
smtps_port=$(pick_port)
closed_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port" --cert "$ca/server.pem" --key "$ca/server.key" \
  --smtps-port "$smtps_port"
start_fake_smtp quit500 <<'EOF'
send 220 fake.test.local ESMTP\r\n
expect EHLO
send 250 fake.test.local\r\n
expect QUIT
send 500 5.5.1 Unrecognized command\r\n
close
EOF
quit500_port=$FAKE_PORT
start_fake_smtp slow <<'EOF'
delay 1500
send 220 slow.test.local ESMTP\r\n
expect EHLO
send 250 slow.test.local\r\n
expect QUIT
send 221 Bye\r\n
close
EOF
slow_port=$FAKE_PORT

# --- Nagios, on a private config: every check once a second (interval_length=1), all at once.
dir=$WORKDIR/nagios
mkdir -p "$dir/checkresults" "$dir/tmp"
deployed=$(dirname "${BASH_SOURCE[0]}")/../../deploy/nagios/smtp_exporter.cfg
grep -q '/usr/local/bin/smtp_exporter check' "$deployed" ||
  fail "$deployed no longer runs /usr/local/bin/smtp_exporter check: update this test"
sed "s|/usr/local/bin/smtp_exporter|$BINARY|" "$deployed" >"$dir/command.cfg"
cat >"$dir/nagios.cfg" <<EOF
log_file=$dir/nagios.log
cfg_file=$dir/command.cfg
cfg_file=$dir/objects.cfg
object_cache_file=$dir/objects.cache
precached_object_file=$dir/objects.precache
status_file=$dir/status.dat
temp_file=$dir/nagios.tmp
temp_path=$dir/tmp
lock_file=$dir/nagios.lock
check_result_path=$dir/checkresults
command_file=$dir/nagios.cmd
query_socket=$dir/nagios.qh
state_retention_file=$dir/retention.dat
retain_state_information=0
nagios_user=root
nagios_group=root
interval_length=1
status_update_interval=1
check_result_reaper_frequency=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
use_syslog=0
check_for_updates=0
enable_notifications=0
enable_flap_detection=0
EOF
# service NAME ARGS: a service of host mx that runs the deployed command with ARGS as $ARG1$.
service() {
  printf '%s\n' "define service {" "    host_name mx" "    service_description $1" \
    "    check_command check_smtp_exporter!$2" "    max_check_attempts 1" \
    "    check_interval 2" "    retry_interval 2" "    check_period 24x7" \
    "    notification_period 24x7" "    contacts nobody" "}"
}
{
  cat <<'EOF'
define timeperiod {
    timeperiod_name 24x7
    alias always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define command {
    command_name always_up
    command_line /bin/true
}
define contact {
    contact_name nobody
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period 24x7
    service_notification_period 24x7
    host_notification_options n
    service_notification_options n
    host_notification_commands always_up
    service_notification_commands always_up
}
define host {
    host_name mx
    address 127.0.0.1
    check_command always_up
    max_check_attempts 1
    check_period 24x7
    notification_period 24x7
    contacts nobody
}
EOF
  service postfix "-p $postfix_port -F monitor.test.local -v"
  service closed "-p $closed_port"
  service quit500 "-p $quit500_port"
  service slow_greeting "-p $slow_port -W 0.5 -C 5"
  service cert_30_7 "-p $postfix_port -S -D 30,7 --ca-file $ca/ca.pem"
  service cert_30_14 "-p $postfix_port -S -D 30,14 --ca-file $ca/ca.pem"
  service implicit_30_7 "-p $smtps_port -s -D 30,7 --ca-file $ca/ca.pem"
} >"$dir/objects.cfg"

nagios4 -v "$dir/nagios.cfg" >"$dir/verify.out" 2>&1 ||
  fail "nagios4 -v refused the config: $(cat "$dir/verify.out")"
log "nagios4 -v: $(grep -E '^Total (Warnings|Errors)' "$dir/verify.out" | tr '\n' ' ')"
# Nagios runs each check in a process group of its own, so stopping Nagios leaves the checks it
# had started running; they end by themselves within their timeout (a sanitizer build's leak
# check at exit makes that seconds, not milliseconds). Registered before Nagios' own stop, this
# runs after it: wait for them, and kill what outlives its -t timeout.
checks_running() { pgrep -f "^$BINARY check " >/dev/null; }
wait_for_checks() {
  poll_until 30 _not checks_running && return
  log "WARNING: checks Nagios started still run 30 s after it stopped: SIGKILL"
  pkill -KILL -f "^$BINARY check " || true
}
_CLEANUP+=(wait_for_checks)
started=$(now_us)
spawn nagios "$dir/nagios.out" nagios4 "$dir/nagios.cfg"
_LOGS+=("$dir/nagios.log")

# status_field SERVICE FIELD: FIELD of SERVICE's servicestatus block in status.dat.
status_field() {
  awk -v svc="$1" -v field="$2" '
    /^servicestatus \{/ { in_block = 1; name = ""; value = ""; found = 0; next }
    in_block && /^\t}/ { if (name == svc && found) { print value; exit } in_block = 0; next }
    in_block {
      line = $0; sub(/^\t/, "", line); eq = index(line, "=")
      key = substr(line, 1, eq - 1)
      if (key == "service_description") name = substr(line, eq + 1)
      if (key == field) { value = substr(line, eq + 1); found = 1 }
    }' "$dir/status.dat"
}
services=(postfix closed quit500 slow_greeting cert_30_7 cert_30_14 implicit_30_7)
all_checked() {
  [[ -s $dir/status.dat ]] || return 1
  local s
  for s in "${services[@]}"; do
    [[ $(status_field "$s" has_been_checked) == 1 ]] || return 1
  done
}
wait_until 40 "Nagios to have checked every service (status.dat)" all_checked
log "Nagios checked all ${#services[@]} services $((($(now_us) - started) / 1000)) ms after start"
cp "$dir/status.dat" "$WORKDIR/status.dat.checked"

# rerun_by_hand SERVICE: the service's command run again outside Nagios, with its stderr and
# exit code, which status.dat does not keep (a sanitizer's report goes to stderr).
rerun_by_hand() {
  local args code=0
  args=$(grep -A3 "service_description $1\$" "$dir/objects.cfg" |
    sed -n 's/.*check_command check_smtp_exporter!//p')
  # shellcheck disable=SC2086 # the arguments are split as Nagios splits $ARG1$
  "$BINARY" check -H 127.0.0.1 $args >"$WORKDIR/rerun.out" 2>"$WORKDIR/rerun.err" || code=$?
  log "$1 run by hand (check -H 127.0.0.1 $args): exit $code"
  log "stdout: $(cat "$WORKDIR/rerun.out")"
  log "stderr: $(head -c 4000 "$WORKDIR/rerun.err")"
}

# expect_service SERVICE STATE OUTPUT_PART: current_state and plugin_output as Nagios recorded.
expect_service() {
  local state output perf
  state=$(status_field "$1" current_state)
  output=$(status_field "$1" plugin_output)
  perf=$(status_field "$1" performance_data)
  log "status.dat $1: current_state=$state plugin_output=$output performance_data=$perf"
  [[ $state == "$2" ]] || rerun_by_hand "$1"
  assert_eq "$2" "$state" "$1: current_state"
  assert_contains "$output" "$3" "$1: plugin_output"
  [[ $perf =~ ^time=[0-9]+\.[0-9]{6}s\;[^\ ]*\;[^\ ]*\;0( |$) ]] ||
    fail "$1: performance_data does not start with time=<seconds>s;warn;crit;0: '$perf'"
}
expect_service postfix 0 "SMTP OK - mx.test.local (postfix) greeted in "
expect_service closed 2 "SMTP CRITICAL - connect_refused: 127.0.0.1 port $closed_port refused"
expect_service quit500 1 "SMTP WARNING - QUIT was answered with 500, not 221"
expect_service slow_greeting 1 "SMTP WARNING - the greeting took 1."
assert_contains "$(status_field slow_greeting plugin_output)" "(warning range 0.5)" \
  "slow_greeting: plugin_output"
expect_service cert_30_7 1 "SMTP WARNING - the certificate expires in 9 days, "
assert_contains "$(status_field cert_30_7 plugin_output)" "(warning at 30 or less)" \
  "cert_30_7: plugin_output"
expect_service cert_30_14 2 "SMTP CRITICAL - the certificate expires in 9 days, "
expect_service implicit_30_7 1 "SMTP WARNING - the certificate expires in 9 days, "
assert_contains "$(status_field cert_30_14 plugin_output)" "(critical at 14 or less)" \
  "cert_30_14: plugin_output"

perf=$(status_field postfix performance_data)
for label in connect greeting ehlo quit; do
  [[ $perf =~ (^| )$label=[0-9]+\.[0-9]{6}s\;\;\;0( |$) ]] ||
    fail "postfix: no $label=<seconds>s;;;0 in performance_data '$perf'"
done
perf=$(status_field slow_greeting performance_data)
[[ $perf =~ (^| )greeting=1\.[0-9]{6}s\;0\.5\;5\;0( |$) ]] ||
  fail "slow_greeting: performance_data lacks greeting=1.x s with -W/-C as warn/crit: '$perf'"
perf=$(status_field cert_30_7 performance_data)
assert_contains "$perf" "cert_days=9;@~:30;@~:7" "cert_30_7: performance_data"
[[ $perf =~ (^| )tls_handshake=[0-9]+\.[0-9]{6}s ]] ||
  fail "cert_30_7: no tls_handshake in performance_data '$perf'"
perf=$(status_field implicit_30_7 performance_data)
assert_contains "$perf" "cert_days=9;@~:30;@~:7" "implicit_30_7: performance_data"
[[ $perf =~ (^| )tls_handshake=[0-9]+\.[0-9]{6}s ]] ||
  fail "implicit_30_7: no tls_handshake in performance_data '$perf'"
[[ -z $(status_field closed long_plugin_output) ]] ||
  fail "closed: long_plugin_output without -v: '$(status_field closed long_plugin_output)'"
# status.dat keeps the long output's line breaks as the two characters \n.
long=$(status_field postfix long_plugin_output)
assert_contains "$long" 'S: 220 mx.test.local ESMTP Postfix (Debian/GNU)\n' \
  "postfix: long_plugin_output (-v)"
assert_contains "$long" 'C: EHLO monitor.test.local\n' "postfix: long_plugin_output (-v)"
assert_contains "$long" 'S: 221 2.0.0 Bye' "postfix: long_plugin_output (-v)"
alerts=$(grep -c 'SERVICE ALERT: mx;' "$dir/nagios.log" || true)
((alerts >= 6)) || fail "nagios.log has $alerts SERVICE ALERT lines, expected one per non-OK service"
log "nagios.log: $alerts SERVICE ALERT lines, e.g. $(grep -m1 'SERVICE ALERT: mx;quit500' \
  "$dir/nagios.log")"

# --- Icinga 2: the CheckCommand validates, with Services using it as they use the ITL's smtp.
icinga=$WORKDIR/icinga2.conf
cat >"$icinga" <<EOF
const PluginDir = "/usr/lib/nagios/plugins"
include <itl>
include <plugins>
include "$(realpath "$(dirname "${BASH_SOURCE[0]}")/../../deploy/nagios/smtp_exporter.conf")"
object Host "mx" {
  address = "127.0.0.1"
  check_command = "dummy"
}
apply Service for (command in [ "smtp", "smtp_exporter" ]) {
  check_command = command
  vars.smtp_port = $postfix_port
  vars.smtp_starttls = true
  vars.smtp_certificate_age = "30,14"
  vars.smtp_warning = 2
  vars.smtp_critical = 5
  vars.smtp_ignore_quit = true
  assign where host.name == "mx"
}
object Service "smtp_exporter-greeting" {
  host_name = "mx"
  check_command = "smtp_exporter"
  vars.smtp_ssl = true
  vars.smtp_greeting_warning = "0.5"
  vars.smtp_greeting_critical = "~:5"
  vars.smtp_verbose = true
}
EOF
icinga2 daemon -C -c "$icinga" >"$WORKDIR/icinga2.out" 2>&1 ||
  fail "icinga2 daemon -C refused the CheckCommand: $(cat "$WORKDIR/icinga2.out")"
assert_contains "$(cat "$WORKDIR/icinga2.out")" "Instantiated 3 Services" "icinga2 daemon -C"
# And it does refuse what is wrong: the same Service with an attribute that does not exist.
sed 's/vars.smtp_verbose = true/vars.smtp_verbose = true\n  no_such_attribute = 1/' "$icinga" \
  >"$WORKDIR/icinga2-bad.conf"
if icinga2 daemon -C -c "$WORKDIR/icinga2-bad.conf" >"$WORKDIR/icinga2-bad.out" 2>&1; then
  fail "icinga2 daemon -C accepted a config with an unknown attribute: the validation is not real"
fi
log "nagios: PASS with $_ASSERTIONS assertions"
