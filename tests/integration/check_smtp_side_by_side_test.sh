#!/usr/bin/env bash
# check_smtp_side_by_side_test.sh BINARY: monitoring-plugins' check_smtp and `smtp_exporter
# check` against the same servers (real Postfix, Exim and OpenSMTPD, and scripted fakes for what
# no real server does), each case with the options each plugin needs for it. It writes the
# table of the states both gave, with why they agree or differ, and checks that README.md's
# table (between the "check_smtp side by side" markers) is exactly that table.
#
#   UPDATE_README=1 tests/integration/check_smtp_side_by_side_test.sh build/smtp_exporter
# writes the table into README.md instead (then review the diff: a "why" may need new words).
# Exit 77 if check_smtp is missing (tests/support/install_deps.sh test installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: check_smtp_side_by_side_test.sh path/to/smtp_exporter}
CHECK_SMTP=/usr/lib/nagios/plugins/check_smtp
if [[ ! -x $CHECK_SMTP ]]; then
  echo "SKIP: $CHECK_SMTP is not installed ($INSTALL_HINT)" >&2
  exit 77
fi
test_init check_smtp_side_by_side 150
require_binary "$BINARY"
require_fake_smtp "$BINARY"
README=$REPO_ROOT/README.md
BEGIN_MARK='<!-- check_smtp side by side: begin (written by tests/integration/check_smtp_side_by_side_test.sh) -->'
END_MARK='<!-- check_smtp side by side: end -->'

ca=$WORKDIR/ca
make_test_ca "$ca" 10
postfix_port=$(pick_port)
smtps_port=$(pick_port)
exim_port=$(pick_port)
opensmtpd_port=$(pick_port)
closed_port=$(pick_port)
start_postfix "$WORKDIR" "$postfix_port" --cert "$ca/server.pem" --key "$ca/server.key" \
  --smtps-port "$smtps_port"
start_exim "$WORKDIR" "$exim_port" # the self-signed WORKDIR/tls certificate
start_opensmtpd "$WORKDIR" "$opensmtpd_port"

# fake NAME: a fake server playing the script on stdin; its port goes in port_of[NAME]. The
# scripts' "expect " takes any line: check_smtp says HELO where smtp_exporter says EHLO.
declare -A port_of
fake() {
  start_fake_smtp "$1"
  port_of[$1]=$FAKE_PORT
}
fake quit500 <<'EOF'
send 220 fake.test.local ESMTP\r\n
expect 
send 250 fake.test.local\r\n
expect QUIT
send 500 5.5.1 Unrecognized command\r\n
close
EOF
fake quit_closed <<'EOF'
send 220 fake.test.local ESMTP\r\n
expect 
send 250 fake.test.local\r\n
expect QUIT
close
EOF
fake multiline <<'EOF'
send 220-fake.test.local ESMTP first line\r\n
delay 300
send 220-second line\r\n
send 220 last line\r\n
expect 
send 250 fake.test.local\r\n
expect QUIT
send 221 Bye\r\n
close
EOF
fake busy <<'EOF'
send 421 4.3.2 fake.test.local Service not available, try again later\r\n
expect QUIT
send 221 Bye\r\n
close
EOF
fake blocked <<'EOF'
send 554 5.7.1 fake.test.local Your address is listed at a blocklist\r\n
expect QUIT
send 221 Bye\r\n
close
EOF
fake silent <<'EOF'
stall
EOF
fake slow <<'EOF'
delay 1500
send 220 fake.test.local ESMTP\r\n
expect 
send 250 fake.test.local\r\n
expect QUIT
send 221 Bye\r\n
close
EOF
# As sshd answers a line that is not an SSH identification.
fake ssh <<'EOF'
send SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n
expect 
send Invalid SSH identification string.\r\n
close
EOF
declare -A port_by_server=(
  [postfix]=$postfix_port [smtps]=$smtps_port [exim]=$exim_port [opensmtpd]=$opensmtpd_port
  [closed]=$closed_port)
for name in "${!port_of[@]}"; do port_by_server[$name]=${port_of[$name]}; done

state_name() {
  case $1 in
    0) echo OK ;;
    1) echo WARNING ;;
    2) echo CRITICAL ;;
    3) echo UNKNOWN ;;
    *) echo "exit $1" ;;
  esac
}

# compare SERVER CASE THEIR_OPTIONS OUR_OPTIONS WHY: runs both plugins against SERVER's port and
# adds a row. In the options, CA stands for the test CA's certificate file.
rows=()
compare() {
  local server=$1 label=$2 their_text=$3 our_text=$4 why=$5 port theirs ours rc_theirs=0 rc_ours=0
  local -a their_args our_args
  port=${port_by_server[$server]}
  read -ra their_args <<<"${their_text//CA/$ca/ca.pem}"
  read -ra our_args <<<"${our_text//CA/$ca/ca.pem}"
  theirs=$("$CHECK_SMTP" -H 127.0.0.1 -p "$port" "${their_args[@]}" 2>&1) || rc_theirs=$?
  ours=$("$BINARY" check -H 127.0.0.1 -p "$port" "${our_args[@]}" 2>&1) || rc_ours=$?
  log "$label: check_smtp $their_text -> $rc_theirs: ${theirs%%$'\n'*}"
  log "$label: smtp_exporter check $our_text -> $rc_ours: ${ours%%$'\n'*}"
  local options=${their_text:+\`$their_text\`} ours_state
  [[ $our_text == "$their_text" ]] || options+=" / \`$our_text\`"
  ours_state=$(state_name "$rc_ours")
  ((rc_theirs == rc_ours)) || ours_state="**$ours_state**"
  rows+=("| $label | $options | $(state_name "$rc_theirs") | $ours_state | $why |")
}

compare postfix "Postfix" "" "" "both greet, say HELO/EHLO and QUIT"
compare exim "Exim" "" "" "Exim's greeting carries the date: no matter to either"
compare opensmtpd "OpenSMTPD" "" "" "both greet, say HELO/EHLO and QUIT"
compare multiline "fake: a greeting of three lines, the last 0.3 s after the first" "" "" \
  "check_smtp takes the rest of the greeting for the reply to its HELO, which it does not judge; smtp_exporter reads the whole reply (RFC 5321 4.2) and times its last line"
compare quit500 "fake: QUIT answered with 500" "" "" \
  "check_smtp never reads the reply to QUIT; smtp_exporter wants the 221 of RFC 5321 (-q makes it OK, as for check_smtp)"
compare quit_closed "fake: QUIT answered by closing the connection" "" "" \
  "the same: check_smtp does not wait for the 221"
compare busy "fake: greeting 421 (busy)" "" "" \
  "check_smtp looks for the text 220 (its -e default) and calls anything else an invalid response; a 421 or 554 greeting refuses service"
compare blocked "fake: greeting 554 (blocklisted)" "" "" "as for 421"
compare ssh "fake: an SSH server on the port" "" "" \
  "check_smtp calls it an invalid response; smtp_exporter says the port speaks SSH, not SMTP"
compare closed "a closed port" "" "" "connection refused"
compare silent "fake: connects, never greets" "-t 1" "-t 1" "the timeout"
compare smtps "Postfix's implicit-TLS port, probed in plaintext" "-t 1" "-t 1" \
  "the server waits for a TLS handshake: a timeout for both, and smtp_exporter's hint says to try implicit TLS"
compare slow "fake: greets after 1.5 s" "-w 1 -c 5" "-w 1 -c 5" \
  "-w and -c bound the whole session in both (smtp_exporter's -W and -C bound the greeting alone)"
compare exim "Exim, STARTTLS with a self-signed certificate" "-S" "-S" \
  "check_smtp -S does not verify the certificate; smtp_exporter does (--insecure-skip-verify accepts it, and the facts are still shown)"
compare postfix "Postfix, STARTTLS, certificate of a trusted CA" "-S" "-S --ca-file CA" \
  "the certificate verifies"
compare postfix "Postfix, STARTTLS, certificate expires in 10 days" "-D 30,7" \
  "-D 30,7 --ca-file CA" "9 whole days left: at most 30, more than 7; -D alone means STARTTLS in both"
compare postfix "Postfix, STARTTLS, certificate expires in 10 days" "-D 30,14" \
  "-D 30,14 --ca-file CA" "9 whole days left: at most 14"
compare opensmtpd "OpenSMTPD, STARTTLS (its handshake fails with OpenSSL 3)" "-S" "-S" \
  "a failed handshake"

version=$("$CHECK_SMTP" -V 2>&1 | head -n 1) || true # it exits 3 after saying its version
table=$WORKDIR/table.md
{
  echo "$BEGIN_MARK"
  echo "States from \`$version\` and \`smtp_exporter check\`, each against the same server;"
  echo "where the options differ, check_smtp's come first. CA is the test CA's certificate."
  echo
  echo "| server | options | check_smtp | smtp_exporter check | why |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "$END_MARK"
} >"$table"

# The README's table: the lines from BEGIN_MARK to END_MARK.
readme_table() { awk -v b="$BEGIN_MARK" -v e="$END_MARK" '$0 == b { on = 1 } on { print } $0 == e { exit }' "$README"; }
if [[ -n ${UPDATE_README:-} ]]; then
  grep -qxF "$BEGIN_MARK" "$README" || fail "README.md has no line '$BEGIN_MARK' to write after"
  awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v t="$table" '
    $0 == b { while ((getline line < t) > 0) print line; skip = 1; next }
    skip && $0 == e { skip = 0; next }
    !skip { print }' "$README" >"$WORKDIR/README.md"
  cp "$WORKDIR/README.md" "$README"
  log "wrote the table into $README"
fi
if ! diff -u <(readme_table) "$table" >"$WORKDIR/table.diff"; then
  cat "$WORKDIR/table.diff" >&2
  fail "README.md's check_smtp table is not what the plugins do now (diff above); run" \
    "UPDATE_README=1 $0 $BINARY and review the change"
fi
log "README.md's table matches the ${#rows[@]} cases measured"
