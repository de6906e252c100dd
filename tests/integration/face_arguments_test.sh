#!/usr/bin/env bash
# face_arguments_test.sh BINARY: the exit codes and messages of the check and probe faces for
# arguments they cannot use, as their users' scripts see them: check answers like a Nagios
# plugin (one `SMTP UNKNOWN - ...` line on stdout, exit 3), probe exits 2 (1 means a failed
# probe). No server is needed: every case is refused before any connection.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BINARY=${1:?usage: face_arguments_test.sh path/to/smtp_exporter}
test_init face_arguments 60
require_binary "$BINARY"

# expect_exit CODE STDOUT_PART ARGS...: runs the binary with ARGS.
expect_exit() {
  local want=$1 part=$2 out rc=0
  shift 2
  out=$("$BINARY" "$@" 2>"$WORKDIR/stderr") || rc=$?
  assert_eq "$want" "$rc" "exit code of: $*"
  [[ -z $part ]] || assert_contains "$out" "$part" "stdout of: $*"
}

expect_exit 3 "SMTP UNKNOWN - --hostname is required" check
expect_exit 3 "SMTP UNKNOWN - -w abc: not a Nagios range ('abc' is not a number)" \
  check -H 127.0.0.1 -w abc
expect_exit 3 "SMTP UNKNOWN - -C 5:1: not a Nagios range (the start is above the end)" \
  check -H 127.0.0.1 -C 5:1
expect_exit 3 "SMTP UNKNOWN - -D 30,x: expected whole days" check -H 127.0.0.1 -D 30,x
expect_exit 3 "SMTP UNKNOWN - -4 and -6 exclude each other" check -H 127.0.0.1 -4 -6
expect_exit 3 "SMTP UNKNOWN - -S (STARTTLS) and -s (implicit TLS) exclude each other" \
  check -H 127.0.0.1 -S -s
expect_exit 3 "SMTP UNKNOWN - -H mx..example: not a host name or IP address" check -H mx..example
expect_exit 3 "SMTP UNKNOWN - -F a b: not a domain name or address literal" \
  check -H 127.0.0.1 -F "a b"
for t in 0 -1 1e300 nan; do
  expect_exit 3 "SMTP UNKNOWN - -t: the timeout must be a number of seconds above 0, at most 3600" \
    check -H 127.0.0.1 -t "$t"
done
expect_exit 3 "SMTP UNKNOWN - -p 70000: not a port" check -H 127.0.0.1 -p 70000
expect_exit 3 "SMTP UNKNOWN - -p 0: not a port" check -H 127.0.0.1 -p 0
expect_exit 3 "SMTP UNKNOWN - --server-name a/b: not a host name" \
  check -H 127.0.0.1 -S --server-name a/b
expect_exit 3 "SMTP UNKNOWN - check_smtp's -f,--from is not supported" \
  check -H 127.0.0.1 -f postmaster@example.org
expect_exit 3 "SMTP UNKNOWN - check_smtp's --command is not supported: -C is the greeting's" \
  check -H 127.0.0.1 --command "HELP"
expect_exit 3 "SMTP UNKNOWN - " check -H 127.0.0.1 --no-such-option
expect_exit 3 "SMTP UNKNOWN - ca_file $WORKDIR/missing.pem" \
  check -H 127.0.0.1 -S --ca-file "$WORKDIR/missing.pem"
# No stray output for Nagios to misread: exactly one line on stdout, nothing on stderr.
out=$("$BINARY" check -H 127.0.0.1 -w abc 2>"$WORKDIR/stderr") || true
assert_eq 1 "$(wc -l <<<"$out")" "lines on stdout of a usage error"
assert_eq "" "$(cat "$WORKDIR/stderr")" "stderr of a usage error"
expect_exit 0 "-H,--hostname" check --help
expect_exit 0 "smtp_exporter check, version " check -V

expect_exit 2 "" probe
expect_exit 2 "" probe 127.0.0.1:25 --tls=sometimes
expect_exit 2 "" probe 127.0.0.1:25 --timeout=soon
expect_exit 2 "" probe 127.0.0.1:25 --helo "bad name"
expect_exit 2 "" probe 127.0.0.1:25 --no-such-option
assert_contains "$(cat "$WORKDIR/stderr")" "--no-such-option" "stderr of probe --no-such-option"
log "face_arguments: PASS with $_ASSERTIONS assertions"
