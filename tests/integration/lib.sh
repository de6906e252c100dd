# shellcheck shell=bash
# Helpers for the integration tests (and deploy/local/run.sh): real MTAs, a real Prometheus and
# the exporter, all on 127.0.0.1, each under a private directory so that nothing in /etc is
# touched and runs do not collide. Source it, then call test_init (tests) or lib_init (others).
#
# Rules kept here: every wait has a deadline and polls (no fixed sleeps for readiness); every
# process started is stopped by the EXIT trap, also on failure, Ctrl-C or the watchdog timeout.
#
# Environment: KEEP_WORKDIR=1 keeps a passing test's directory (a failing one is always kept);
# SMTP_TEST_TIMEOUT=S overrides a test's watchdog; SMTP_TEST_CACHE is where install_deps.sh put
# the unpacked Exim and OpenSMTPD.

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LIB_DIR/../.." && pwd)
SMTP_TEST_CACHE=${SMTP_TEST_CACHE:-/var/cache/smtp_exporter-test}
EXIM_BIN=$SMTP_TEST_CACHE/exim/root/usr/sbin/exim4
OPENSMTPD_BIN=$SMTP_TEST_CACHE/opensmtpd/root/usr/sbin/smtpd
INSTALL_HINT="run: $REPO_ROOT/tests/support/install_deps.sh test"

WORKDIR=${WORKDIR:-}
_CLEANUP=()     # commands run in reverse order at exit
_LOGS=()        # files whose tail is shown when the test fails
_WATCHDOG_PID=
_TEST_NAME=${_TEST_NAME:-}

# ---------------------------------------------------------------------------------------------
# Messages and failure

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*" >&2; }

# fail MESSAGE...: the test fails; the EXIT trap shows logs and stops everything.
fail() {
  printf '\nFAIL: %s\n' "$*" >&2
  exit 1
}

require_root() {
  if [[ $EUID -ne 0 ]]; then
    fail "${_TEST_NAME:-this script} must run as root: it starts Postfix, Exim and" \
      "OpenSMTPD, which bind ports and switch to their own users (run it with sudo)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Time, deadlines, polling

# now_us: microseconds since the epoch (integer arithmetic, no forks).
now_us() { echo "${EPOCHREALTIME/./}"; }

# poll_until TIMEOUT_S CMD...: runs CMD every 0.1 s until it succeeds (0) or the time is up (1).
poll_until() {
  local timeout_s=$1
  shift
  local end
  end=$(($(now_us) + $(awk -v t="$timeout_s" 'BEGIN { printf "%d", t * 1000000 }')))
  while :; do
    "$@" && return 0
    (($(now_us) >= end)) && return 1
    sleep 0.1
  done
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll_until, and fail the test on timeout.
wait_until() {
  local timeout_s=$1 what=$2
  shift 2
  poll_until "$timeout_s" "$@" || fail "timed out after ${timeout_s}s waiting for: $what"
}

# ---------------------------------------------------------------------------------------------
# Processes

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}

# group_alive PGID: some non-zombie process is in that process group.
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# session_pids SID: non-zombie processes of a session (Postfix's master and its children).
session_pids() {
  ps -e -o sid=,pid=,stat= | awk -v s="$1" '$1 == s && $3 !~ /^Z/ { print $2 }'
}

# spawn NAME LOGFILE CMD...: starts CMD in a session of its own (so Ctrl-C in a terminal does
# not reach it and its children can be stopped as a group), registers its stop. Sets SPAWNED_PID.
spawn() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  SPAWNED_PID=$!
  _LOGS+=("$logfile")
  _CLEANUP+=("stop_group $SPAWNED_PID $(printf '%q' "$name")")
  log "started $name (pid $SPAWNED_PID): $*"
}

# stop_group PGID NAME [TIMEOUT_S]: SIGTERM to the group, wait, SIGKILL what is left.
stop_group() {
  local pgid=$1 name=$2 timeout_s=${3:-5}
  if group_alive "$pgid"; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    if ! poll_until "$timeout_s" _not group_alive "$pgid"; then
      log "WARNING: $name (group $pgid) ignored SIGTERM for ${timeout_s}s: SIGKILL"
      kill -KILL -- "-$pgid" 2>/dev/null || true
      poll_until 2 _not group_alive "$pgid" || log "WARNING: $name (group $pgid) survives SIGKILL"
    fi
    log "stopped $name"
  fi
  wait "$pgid" 2>/dev/null || true # reap our child
}

_not() { ! "$@"; }

# ---------------------------------------------------------------------------------------------
# Set-up and the EXIT trap

# lib_init WORKDIR: use WORKDIR (created, world-traversable: the MTAs' users need to reach their
# files in it) and install the traps. For scripts that are not tests (deploy/local/run.sh).
lib_init() {
  WORKDIR=$1
  mkdir -p "$WORKDIR"
  chmod 755 "$WORKDIR"
  trap _on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# test_init NAME [TIMEOUT_S]: root check, a fresh temp dir in $WORKDIR, traps, a watchdog that
# ends the test (and so stops everything) after TIMEOUT_S, below ctest's own timeout.
test_init() {
  _TEST_NAME=$1
  local timeout_s=${SMTP_TEST_TIMEOUT:-${2:-240}}
  require_root
  lib_init "$(mktemp -d "${TMPDIR:-/tmp}/smtp_exporter-$1.XXXXXX")"
  log "$_TEST_NAME: work dir $WORKDIR"
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$timeout_s" &
    sleeper=$!
    wait "$sleeper"
    printf '\nFAIL: %s: watchdog: still running after %ss\n' "$_TEST_NAME" "$timeout_s" >&2
    kill -TERM $$
  ) &
  _WATCHDOG_PID=$!
}

_on_exit() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM HUP
  if ((rc != 0)) && [[ -n $_TEST_NAME ]]; then
    for f in "${_LOGS[@]}"; do
      [[ -s $f ]] || continue
      printf '\n----- last lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    done
    printf '\n' >&2
  fi
  for ((i = ${#_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${_CLEANUP[i]}"
  done
  if [[ -n $_WATCHDOG_PID ]]; then
    kill -TERM "$_WATCHDOG_PID" 2>/dev/null
    wait "$_WATCHDOG_PID" 2>/dev/null
  fi
  # Everything this script started names WORKDIR on its command line (Postfix's processes are
  # checked by stop_postfix): anything left is a bug of the harness.
  local procs left=
  if [[ -n $_TEST_NAME && -n $WORKDIR ]]; then
    procs=$(ps -e -o pid=,stat=,args=) # not piped: awk's own command line names WORKDIR
    left=$(awk -v w="$WORKDIR" 'index($0, w) && $2 !~ /^Z/' <<<"$procs")
  fi
  if [[ -n $left ]]; then
    printf 'FAIL: processes left running after cleanup:\n%s\n' "$left" >&2
    ((rc == 0)) && rc=1
  fi
  if [[ -n $_TEST_NAME ]]; then
    if ((rc == 0)) && [[ -z ${KEEP_WORKDIR:-} ]]; then
      rm -rf "$WORKDIR"
      log "$_TEST_NAME: PASS"
    else
      log "$_TEST_NAME: exit $rc; files kept in $WORKDIR"
    fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Ports

# pick_port: prints a free 127.0.0.1 TCP port below the ephemeral range (so it does not race
# with port-0 binds of unit tests), never one this test picked before.
pick_port() {
  local taken=${WORKDIR:-/tmp}/.picked_ports port i
  touch "$taken"
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + SRANDOM % 12000))
    grep -qx "$port" "$taken" && continue
    [[ -z $(ss -Htan "( sport = :$port )") ]] || continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    echo "$port" >>"$taken"
    echo "$port"
    return 0
  done
  echo "pick_port: no free port found" >&2
  return 1
}

# pick_dns_port: pick_port, also free for UDP (a DNS server binds both).
pick_dns_port() {
  local port i
  for ((i = 0; i < 20; i++)); do
    port=$(pick_port) || return 1
    [[ -z $(ss -Huan "( sport = :$port )") ]] && echo "$port" && return 0
  done
  echo "pick_dns_port: no port free for both TCP and UDP" >&2
  return 1
}

# port_open HOST PORT: something accepts a TCP connection there.
# shellcheck disable=SC2016 # expanded by the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# wait_port HOST PORT DEADLINE_S [PID]: until HOST:PORT accepts; fails early if PID died.
wait_port() {
  local host=$1 port=$2 timeout_s=$3 pid=${4:-}
  wait_until "$timeout_s" "$host:$port to accept connections" _port_or_dead "$host" "$port" "$pid"
}
_port_or_dead() {
  port_open "$1" "$2" && return 0
  if [[ -n $3 ]] && ! group_alive "$3"; then
    fail "process $3 exited before $1:$2 accepted connections"
  fi
  return 1
}

# smtp_banner PORT [HOST]: prints the first line the server at HOST:PORT (default 127.0.0.1)
# sends (CR stripped), then says QUIT.
smtp_banner() {
  local line fd
  exec {fd}<>"/dev/tcp/${2:-127.0.0.1}/$1" || return 1
  IFS= read -r -t 5 -u "$fd" line || true
  { printf 'QUIT\r\n' 1>&"$fd"; } 2>/dev/null || true
  exec {fd}<&-
  printf '%s\n' "${line%$'\r'}"
}

# smtp_session PORT: an EHLO/QUIT dialogue; prints every line the server sent (CR stripped).
smtp_session() {
  local line fd
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
  IFS= read -r -t 5 -u "$fd" line && printf '%s\n' "${line%$'\r'}"
  printf 'EHLO probe.test.local\r\n' >&"$fd"
  while IFS= read -r -t 5 -u "$fd" line; do
    printf '%s\n' "${line%$'\r'}"
    [[ $line == [0-9][0-9][0-9]-* ]] || break
  done
  printf 'QUIT\r\n' >&"$fd"
  IFS= read -r -t 5 -u "$fd" line && printf '%s\n' "${line%$'\r'}"
  exec {fd}<&-
}

# require_reachable USER DIR: USER may enter DIR (the MTAs drop root; a work dir under a private
# home directory such as /root would make them fail with less clear messages).
require_reachable() {
  setpriv --reuid="$1" --regid="$1" --clear-groups test -x "$2" ||
    fail "user $1 cannot enter $2 (a parent directory is private): use a directory under /tmp" \
      "or /var/tmp"
}

# ---------------------------------------------------------------------------------------------
# TLS

# make_test_cert DIR: DIR/cert.pem and DIR/key.pem, self-signed for mx.test.local and 127.0.0.1.
make_test_cert() {
  local dir=$1
  mkdir -p "$dir"
  [[ -s $dir/cert.pem && -s $dir/key.pem ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=mx.test.local \
    -addext "subjectAltName=DNS:mx.test.local,IP:127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl.err" ||
    fail "openssl could not make a test certificate: $(cat "$dir/openssl.err")"
  chmod 644 "$dir/cert.pem"
  chmod 600 "$dir/key.pem"
}

# make_test_ca DIR [SERVER_DAYS]: a test CA (DIR/ca.pem, DIR/ca.key, valid 90 days) and a
# server certificate it signed for mx.test.local, 127.0.0.1 and ::1 (DIR/server.pem,
# DIR/server.key, valid SERVER_DAYS, default 30: it expires before the CA, so it is the chain's
# earliest notAfter).
make_test_ca() {
  local dir=$1 days=${2:-30}
  mkdir -p "$dir"
  chmod 755 "$dir"
  [[ -s $dir/server.pem && -s $dir/server.key ]] && return 0
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=smtp_exporter test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -new -newkey rsa:2048 -nodes -subj /CN=mx.test.local \
        -keyout "$dir/server.key" -out "$dir/server.csr" &&
      printf '%s\n' "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:mx.test.local,IP:127.0.0.1,IP:::1" \
        >"$dir/server.ext" &&
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$dir/server.ext" -out "$dir/server.pem"
  } >"$dir/openssl.out" 2>&1 ||
    fail "openssl could not make the test CA and server certificate: $(cat "$dir/openssl.out")"
  openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >>"$dir/openssl.out" 2>&1 ||
    fail "the test server certificate does not verify against the test CA:" \
      "$(cat "$dir/openssl.out")"
  chmod 644 "$dir/ca.pem" "$dir/server.pem"
  chmod 600 "$dir/ca.key" "$dir/server.key"
}

# cert_not_after_unix CERT: the certificate's notAfter in seconds since the epoch.
cert_not_after_unix() {
  local end
  end=$(openssl x509 -enddate -noout -in "$1") || return 1
  date -u -d "${end#notAfter=}" +%s
}

# ---------------------------------------------------------------------------------------------
# Postfix (installed package, private config directory)

# start_postfix WORKDIR PORT [OPTIONS]: Postfix listening on 127.0.0.1:PORT only, config in
# WORKDIR/postfix/etc (`postfix -c`), its own queue and data directories, log in
# WORKDIR/postfix/postfix.log. Banner: "220 mx.test.local ESMTP Postfix (Debian/GNU)". It
# offers STARTTLS with the self-signed WORKDIR/tls/cert.pem unless told otherwise. Options:
#   --cert FILE --key FILE   the certificate (chain) and key for STARTTLS and implicit TLS
#   --smtps-port PORT        also listen on PORT with implicit TLS (smtpd_tls_wrappermode)
#   --address ADDR           listen on ADDR instead of 127.0.0.1 (::1 for IPv6)
start_postfix() {
  local work=$1 port=$2
  shift 2
  local dir=$work/postfix cert key smtps_port='' address=127.0.0.1 cert_args=()
  while (($#)); do
    (($# >= 2)) || fail "start_postfix: option $1 needs a value"
    case $1 in
      --cert | --key) cert_args+=("$1" "$2") ;;
      --smtps-port) smtps_port=$2 ;;
      --address) address=$2 ;;
      *) fail "start_postfix: unknown option '$1'" ;;
    esac
    shift 2
  done
  command -v postfix >/dev/null || fail "postfix is not installed ($INSTALL_HINT)"
  _cert_options start_postfix "$work" "${cert_args[@]}"
  local listen=$address protocols=ipv4
  if [[ $address == *:* ]]; then
    listen="[$address]" protocols=all
  fi
  mkdir -p "$dir/etc" "$dir/queue" # data_directory is made by `postfix check`, owned by postfix
  chmod 755 "$work" "$dir" "$dir/etc"
  require_reachable postfix "$dir"
  cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.local
mydomain = test.local
myorigin = \$myhostname
mydestination = localhost
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = $protocols
smtpd_banner = \$myhostname ESMTP \$mail_name (Debian/GNU)
biff = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_security_level = may
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
EOF
  # Only the services a receive-only test peer needs; no chroot (the queue is not in /var).
  cat >"$dir/etc/master.cf" <<EOF
$listen:$port inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
  if [[ -n $smtps_port ]]; then
    printf '%s\n' "$listen:$smtps_port inet n - n - - smtpd" \
      "  -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt" >>"$dir/etc/master.cf"
  fi
  _LOGS+=("$dir/postfix.log" "$dir/start.out")
  _CLEANUP+=("stop_postfix '$work'")
  postfix -c "$dir/etc" check >"$dir/start.out" 2>&1 ||
    fail "postfix check failed: $(cat "$dir/start.out")"
  postfix -c "$dir/etc" start >>"$dir/start.out" 2>&1 ||
    fail "postfix start failed: $(cat "$dir/start.out")"
  wait_port "$address" "$port" 20
  [[ -z $smtps_port ]] || wait_port "$address" "$smtps_port" 20
  log "Postfix up on $listen:$port${smtps_port:+ (implicit TLS on $listen:$smtps_port)}" \
    "(config $dir/etc, master pid $(postfix_master_pid "$work"))"
}

# postfix_master_pid WORKDIR
postfix_master_pid() {
  local pid
  pid=$(cat "$1/postfix/queue/pid/master.pid" 2>/dev/null) || return 1
  echo $((pid))
}

# stop_postfix WORKDIR: `postfix stop`, then wait until no process of its session is left.
stop_postfix() {
  local work=$1 dir=$1/postfix pid sid pids
  [[ -f $dir/etc/main.cf ]] || return 0
  pid=$(postfix_master_pid "$work") || return 0
  pid_alive "$pid" || return 0
  sid=$(ps -o sid= -p "$pid" | tr -d ' ')
  postfix -c "$dir/etc" stop >>"$dir/start.out" 2>&1 || true
  if ! poll_until 10 _not _session_busy "$sid"; then
    pids=$(session_pids "$sid")
    log "WARNING: Postfix processes left after 'postfix stop': $pids: SIGKILL"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
  fi
  log "Postfix stopped ($dir)"
}
_session_busy() { [[ -n $(session_pids "$1") ]]; }

# _cert_options CALLER WORKDIR [--cert FILE --key FILE]: sets the caller's `cert` and `key`
# (declared local there) from the options, or to the self-signed WORKDIR/tls pair.
_cert_options() {
  local caller=$1 work=$2
  shift 2
  cert='' key=''
  while (($#)); do
    (($# >= 2)) || fail "$caller: option $1 needs a value"
    case $1 in
      --cert) cert=$2 ;;
      --key) key=$2 ;;
      *) fail "$caller: unknown option '$1'" ;;
    esac
    shift 2
  done
  if [[ -z $cert && -z $key ]]; then
    make_test_cert "$work/tls"
    cert=$work/tls/cert.pem key=$work/tls/key.pem
  fi
  [[ -n $cert && -n $key ]] || fail "$caller: --cert and --key go together"
}

# ---------------------------------------------------------------------------------------------
# Exim 4.96 (exim4-daemon-light unpacked into $SMTP_TEST_CACHE)

# start_exim WORKDIR PORT [--cert FILE --key FILE]: Exim on 127.0.0.1:PORT, files in
# WORKDIR/exim. Banner: "220 mx.test.local ESMTP Exim 4.96 <date>" (the date changes on every
# connection). STARTTLS with the given certificate and key (default: WORKDIR/tls/cert.pem).
start_exim() {
  local work=$1 port=$2
  shift 2
  local dir=$work/exim cert key
  _cert_options start_exim "$work" "$@"
  [[ -x $EXIM_BIN ]] || fail "Exim is not unpacked at $EXIM_BIN ($INSTALL_HINT)"
  getent passwd Debian-exim >/dev/null || fail "user Debian-exim is missing ($INSTALL_HINT)"
  mkdir -p "$dir/spool" "$dir/log"
  chmod 755 "$work" "$dir"
  chown Debian-exim:Debian-exim "$dir/spool" "$dir/log"
  require_reachable Debian-exim "$dir"
  install -m 644 "$cert" "$dir/cert.pem"
  install -g Debian-exim -m 640 "$key" "$dir/key.pem"
  cat >"$dir/exim.conf" <<EOF
keep_environment =
primary_hostname = mx.test.local
local_interfaces = 127.0.0.1
daemon_smtp_ports = $port
spool_directory = $dir/spool
log_file_path = $dir/log/%slog
pid_file_path = $dir/exim.pid
exim_path = $EXIM_BIN
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
host_lookup =
rfc1413_hosts =
log_selector = +smtp_connection
tls_advertise_hosts = *
tls_certificate = $dir/cert.pem
tls_privatekey = $dir/key.pem
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  deny message = no relaying in test peer
begin routers
begin transports
EOF
  chmod 644 "$dir/exim.conf" # Exim refuses a config file others may write
  _LOGS+=("$dir/log/mainlog" "$dir/log/paniclog")
  spawn exim "$dir/exim.out" "$EXIM_BIN" -C "$dir/exim.conf" -bdf -oX "$port"
  EXIM_PID=$SPAWNED_PID
  wait_port 127.0.0.1 "$port" 20 "$EXIM_PID"
  log "Exim up on 127.0.0.1:$port"
}

stop_exim() { [[ -n ${EXIM_PID:-} ]] && stop_group "$EXIM_PID" exim; }

# ---------------------------------------------------------------------------------------------
# OpenSMTPD 6.8 (unpacked). It advertises STARTTLS, but its handshake fails with OpenSSL 3.
# Its queue is the compiled-in /var/spool/smtpd: one instance at a time (ctest's RESOURCE_LOCK).

# start_opensmtpd WORKDIR PORT [--cert FILE --key FILE]: banner
# "220 mx.test.local ESMTP OpenSMTPD"; the certificate as in start_exim.
start_opensmtpd() {
  local work=$1 port=$2
  shift 2
  local dir=$work/opensmtpd cert key
  _cert_options start_opensmtpd "$work" "$@"
  [[ -x $OPENSMTPD_BIN ]] || fail "OpenSMTPD is not unpacked at $OPENSMTPD_BIN ($INSTALL_HINT)"
  getent passwd opensmtpd >/dev/null || fail "user opensmtpd is missing ($INSTALL_HINT)"
  mkdir -p "$dir" /var/lib/opensmtpd/empty
  chmod 755 "$work" "$dir"
  install -m 644 "$cert" "$dir/cert.pem"
  install -m 600 "$key" "$dir/key.pem"
  cat >"$dir/smtpd.conf" <<EOF
pki mx.test.local cert "$dir/cert.pem"
pki mx.test.local key "$dir/key.pem"
listen on 127.0.0.1 port $port tls pki mx.test.local hostname mx.test.local
action "local" mbox
match from local for local action "local"
EOF
  spawn opensmtpd "$dir/smtpd.log" "$OPENSMTPD_BIN" -d -f "$dir/smtpd.conf"
  OPENSMTPD_PID=$SPAWNED_PID
  wait_port 127.0.0.1 "$port" 20 "$OPENSMTPD_PID"
  log "OpenSMTPD up on 127.0.0.1:$port"
}

stop_opensmtpd() { [[ -n ${OPENSMTPD_PID:-} ]] && stop_group "$OPENSMTPD_PID" opensmtpd; }

# ---------------------------------------------------------------------------------------------
# DNS: dnsmasq (Debian dnsmasq-base) as the authoritative-looking server of a test zone

# start_dns PORT ZONE RECORD...: dnsmasq on 127.0.0.1:PORT (UDP and TCP), answering only from
# the RECORDs, which are dnsmasq config lines (`mx-host=d,host,pref`, `host-record=name,ip`,
# ...); names under ZONE that no RECORD knows are NXDOMAIN, and TTLs are 0 (nothing is cached
# by the resolver asking). Files in WORKDIR/dns. Call stop_dns and start_dns again to change
# the records (dnsmasq rereads its config lines only at start). Sets DNS_PID.
start_dns() {
  local port=$1 zone=$2
  shift 2
  local dir=$WORKDIR/dns
  command -v dnsmasq >/dev/null || fail "dnsmasq is not installed ($INSTALL_HINT)"
  command -v dig >/dev/null || fail "dig is not installed ($INSTALL_HINT)"
  mkdir -p "$dir"
  {
    printf '%s\n' no-resolv no-hosts no-poll bind-interfaces listen-address=127.0.0.1 \
      "port=$port" pid-file= "local=/$zone/" log-queries log-facility=-
    printf '%s\n' "$@"
  } >"$dir/dnsmasq.conf"
  # --keep-in-foreground: the process spawn started is the server (and stop_group's target).
  spawn dnsmasq "$dir/dnsmasq.log" dnsmasq --keep-in-foreground --conf-file="$dir/dnsmasq.conf"
  DNS_PID=$SPAWNED_PID
  DNS_PORT=$port
  wait_until 10 "dnsmasq to answer on 127.0.0.1:$port" _dns_answers "$port" "$zone"
  log "dnsmasq up on 127.0.0.1:$port (zone $zone, $# records)"
}
_dns_answers() {
  group_alive "$DNS_PID" || fail "dnsmasq exited during start-up"
  dig +time=1 +tries=1 -p "$1" @127.0.0.1 "$2" SOA >/dev/null 2>&1
}

stop_dns() { [[ -n ${DNS_PID:-} ]] && stop_group "$DNS_PID" dnsmasq; }

# dns_query TYPE NAME: prints `STATUS` then the answer's records (`pref host` for MX), one a
# line, from the server of start_dns.
dns_query() {
  local out status
  out=$(dig +time=2 +tries=1 +norecurse -p "$DNS_PORT" @127.0.0.1 "$2" "$1" 2>&1) ||
    fail "dig $1 $2 at 127.0.0.1:$DNS_PORT: $out"
  status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
  echo "$status"
  dig +short +time=2 +tries=1 +norecurse -p "$DNS_PORT" @127.0.0.1 "$2" "$1" 2>/dev/null | sort
}

# ---------------------------------------------------------------------------------------------
# npm packages

# npm_modules PACKAGE...: prints the node_modules directory where `install_deps.sh test`
# installs the packages of tests/support/npm; fails the test if a PACKAGE is not in it (not
# installed, or installed from an older package-lock.json).
npm_modules() {
  local modules=$SMTP_TEST_CACHE/npm/node_modules package
  for package in "$@"; do
    [[ -d $modules/$package ]] ||
      fail "npm package $package is not installed in $SMTP_TEST_CACHE/npm ($INSTALL_HINT)"
  done
  echo "$modules"
}

# ---------------------------------------------------------------------------------------------
# Prometheus

# start_prometheus WORKDIR PORT SCRAPE_HOSTPORT [RULE_FILE...]: scrapes SCRAPE_HOSTPORT (job
# smtp_exporter) every second and evaluates the RULE_FILEs every second; its TSDB in
# WORKDIR/prometheus/data.
start_prometheus() {
  local work=$1 port=$2 scrape=$3
  shift 3
  local dir=$work/prometheus rule_files=''
  mkdir -p "$dir"
  (($#)) && rule_files=$'rule_files:\n'$(printf '  - %s\n' "$@")
  cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
$rule_files
scrape_configs:
  - job_name: smtp_exporter
    static_configs:
      - targets: ['$scrape']
EOF
  start_prometheus_config "$work" "$port" "$dir/prometheus.yml"
  log "Prometheus scrapes $scrape"
}

# start_prometheus_config WORKDIR PORT CONFIG: Prometheus with a whole config of the caller's
# (scrape jobs of its own, such as /probe's relabelling); its TSDB in WORKDIR/prometheus/data.
start_prometheus_config() {
  local work=$1 port=$2 config=$3
  local dir=$work/prometheus
  command -v prometheus >/dev/null || fail "prometheus is not installed ($INSTALL_HINT)"
  mkdir -p "$dir/data"
  spawn prometheus "$dir/prometheus.log" prometheus --config.file="$config" \
    --storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$port"
  PROMETHEUS_PID=$SPAWNED_PID
  wait_until 30 "Prometheus /-/ready on 127.0.0.1:$port" _prom_ready "$port"
  log "Prometheus up on 127.0.0.1:$port ($config)"
}
_prom_ready() {
  group_alive "$PROMETHEUS_PID" || fail "prometheus exited during start-up"
  [[ $(http_status "http://127.0.0.1:$1/-/ready") == 200 ]]
}

stop_prometheus() { [[ -n ${PROMETHEUS_PID:-} ]] && stop_group "$PROMETHEUS_PID" prometheus; }

# prom_query PORT EXPR: prints the value of each series of an instant query, one a line
# (nothing for an empty result); returns 1 if the API refuses the query.
prom_query() {
  local body
  body=$(curl -sS --max-time 5 -G "http://127.0.0.1:$1/api/v1/query" \
    --data-urlencode "query=$2") || return 1
  jq -e '.status == "success"' >/dev/null <<<"$body" || {
    echo "prom_query: $body" >&2
    return 1
  }
  jq -r '.data.result[] | .value[1]' <<<"$body"
}

# ---------------------------------------------------------------------------------------------
# HTTP and the exporter

# http_status URL [CURL_ARGS...]: prints the HTTP status code (000 if no answer).
http_status() {
  local url=$1
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

# require_binary PATH: the exporter binary given to the test exists (checked before any server
# is started, so a missing build does not look like something else).
require_binary() {
  [[ -f $1 && -x $1 ]] || fail "exporter binary '$1' is missing or not executable (build it first)"
}

# start_exporter BINARY CONFIG [ARGS...]: runs the exporter on a picked 127.0.0.1 port, stderr
# and stdout to WORKDIR/exporter.log; waits until /-/ready answers 200.
# Sets EXPORTER_PID, EXPORTER_PORT, EXPORTER_URL, EXPORTER_LOG.
start_exporter() {
  local binary=$1 config=$2
  shift 2
  [[ -x $binary ]] || fail "exporter binary '$binary' is missing or not executable"
  EXPORTER_PORT=$(pick_port) || fail "no free port for the exporter"
  EXPORTER_URL=http://127.0.0.1:$EXPORTER_PORT
  EXPORTER_LOG=$WORKDIR/exporter.log
  spawn exporter "$EXPORTER_LOG" "$binary" --config.file="$config" \
    --web.listen-address="127.0.0.1:$EXPORTER_PORT" "$@"
  EXPORTER_PID=$SPAWNED_PID
  wait_until 15 "exporter /-/ready to answer 200 on $EXPORTER_URL" _exporter_ready
  log "exporter up on $EXPORTER_URL (pid $EXPORTER_PID)"
}
_exporter_ready() {
  if ! pid_alive "$EXPORTER_PID"; then
    local rc=0
    wait "$EXPORTER_PID" || rc=$?
    fail "the exporter exited during start-up with status $rc" \
      "(log: $EXPORTER_LOG, $(wc -l <"$EXPORTER_LOG") lines)"
  fi
  [[ $(http_status "$EXPORTER_URL/-/ready") == 200 ]]
}

# scrape PORT: prints the exporter's /metrics (fails the curl on an HTTP error).
scrape() { curl -fsS --max-time 10 "http://127.0.0.1:$1/metrics"; }

# ---------------------------------------------------------------------------------------------
# Reading the text exposition format
#
# A selector is `name` or `name{label="value",...}`; a series matches when its name is equal and
# it has every label given with exactly that value (other labels are allowed: subset match, in
# any order). Values are compared as written in the exposition (escapes included).

# shellcheck disable=SC2016 # an awk program
_METRIC_AWK='
function parse_labels(s, out,    i, c, n, key, val, state, esc) {
  split("", out); n = 0; state = "key"; key = ""; esc = 0
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (state == "key") {
      if (c == "=") state = "open"
      else if (c != "," && c != " ") key = key c
    } else if (state == "open") {
      if (c == "\"") { state = "val"; val = "" }
    } else if (esc) { val = val c; esc = 0 }
    else if (c == "\\") { val = val c; esc = 1 }
    else if (c == "\"") { out[key] = val; n++; key = ""; state = "key" }
    else val = val c
  }
  return n
}
# split_series(line): sets NAME, LABELS (text inside the braces) and VALUE.
function split_series(line,    b, sp, i, c, inq, esc, rest, f) {
  b = index(line, "{"); sp = index(line, " ")
  if (b == 0 || (sp > 0 && sp < b)) {
    NAME = substr(line, 1, sp - 1); LABELS = ""; rest = substr(line, sp + 1)
  } else {
    NAME = substr(line, 1, b - 1); inq = 0; esc = 0
    for (i = b + 1; i <= length(line); i++) {
      c = substr(line, i, 1)
      if (esc) esc = 0
      else if (c == "\\") esc = 1
      else if (c == "\"") inq = !inq
      else if (c == "}" && !inq) break
    }
    LABELS = substr(line, b + 1, i - b - 1); rest = substr(line, i + 1)
  }
  split(rest, f, " "); VALUE = f[1]
}
BEGIN {
  split_series(sel " 0"); want_name = NAME; nwant = parse_labels(LABELS, want)
  count = 0; sum = 0
}
/^#/ || NF == 0 { next }
{
  split_series($0)
  if (NAME != want_name) next
  parse_labels(LABELS, have)
  for (k in want) if (!(k in have) || have[k] != want[k]) next
  count++; sum += VALUE
  if (mode == "values") print VALUE
  else if (mode == "lines") print
  else if (mode == "label") print have[label]
}
END {
  if (mode == "count") print count
  else if (mode == "sum") print sum
}'

# metric_value FILE SELECTOR: the value of each matching series, one a line.
metric_value() { awk -v mode=values -v sel="$2" "$_METRIC_AWK" "$1"; }
# metric_lines FILE SELECTOR: the matching series lines.
metric_lines() { awk -v mode=lines -v sel="$2" "$_METRIC_AWK" "$1"; }
# metric_count FILE SELECTOR: how many series match.
metric_count() { awk -v mode=count -v sel="$2" "$_METRIC_AWK" "$1"; }
# metric_sum FILE SELECTOR: the sum of the matching series' values (0 if none).
metric_sum() { awk -v mode=sum -v sel="$2" "$_METRIC_AWK" "$1"; }

# label_value FILE SELECTOR LABEL: the value of LABEL in each matching series, one a line.
label_value() { awk -v mode=label -v sel="$2" -v label="$3" "$_METRIC_AWK" "$1"; }

# has_series FILE SELECTOR: at least one series matches.
has_series() { (($(metric_count "$1" "$2") > 0)); }

# num_cmp A OP B: numeric comparison (OP: == != < <= > >=), values as Prometheus writes them.
num_cmp() {
  awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    a += 0; b += 0
    if (op == "==") r = a == b; else if (op == "!=") r = a != b
    else if (op == "<") r = a < b; else if (op == "<=") r = a <= b
    else if (op == ">") r = a > b; else if (op == ">=") r = a >= b
    else { print "num_cmp: bad operator " op > "/dev/stderr"; exit 2 }
    exit !r }'
}

# ---------------------------------------------------------------------------------------------
# Assertions: each says what was expected and what came, then fails the test.

_ASSERTIONS=0

# assert_eq EXPECTED ACTUAL DESCRIPTION
assert_eq() {
  _ASSERTIONS=$((_ASSERTIONS + 1))
  [[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
  log "ok: $3 == '$1'"
}

# assert_contains HAYSTACK NEEDLE DESCRIPTION
assert_contains() {
  _ASSERTIONS=$((_ASSERTIONS + 1))
  [[ $1 == *"$2"* ]] || fail "$3: expected to contain '$2', got: $1"
  log "ok: $3 contains '$2'"
}

# assert_metric FILE SELECTOR [OP] VALUE: exactly one series matches and its value OP VALUE
# (OP defaults to ==).
assert_metric() {
  local file=$1 sel=$2 op=== want n got
  if (($# == 4)); then op=$3 want=$4; else want=$3; fi
  _ASSERTIONS=$((_ASSERTIONS + 1))
  n=$(metric_count "$file" "$sel")
  if ((n != 1)); then
    fail "$sel: expected exactly one series with a value $op $want, found $n;" \
      "series of ${sel%%\{*} in the scrape:"$'\n'"$(metric_lines "$file" "${sel%%\{*}")"
  fi
  got=$(metric_value "$file" "$sel")
  num_cmp "$got" "$op" "$want" || fail "$sel: expected a value $op $want, got $got" \
    "($(metric_lines "$file" "$sel"))"
  log "ok: $sel = $got ($op $want)"
}

# assert_series_count FILE SELECTOR N
assert_series_count() {
  local n
  _ASSERTIONS=$((_ASSERTIONS + 1))
  n=$(metric_count "$1" "$2")
  ((n == $3)) || fail "$2: expected $3 series, found $n:"$'\n'"$(metric_lines "$1" "$2")"
  log "ok: $3 series match $2"
}

# assert_no_series FILE SELECTOR
assert_no_series() { assert_series_count "$1" "$2" 0; }

# ---------------------------------------------------------------------------------------------
# The scripted fake SMTP server (tests/support/fake_smtp_main.cpp), for misbehaviour no real
# server shows. ctest gives its path in SMTP_FAKE_SERVER.

# require_fake_smtp BINARY: sets FAKE_SMTP_BIN from SMTP_FAKE_SERVER, or next to BINARY in a
# CMake build tree (build/tests/smtp_fake_server), and fails if it is not there.
require_fake_smtp() {
  FAKE_SMTP_BIN=${SMTP_FAKE_SERVER:-$(dirname "$1")/tests/smtp_fake_server}
  [[ -x $FAKE_SMTP_BIN ]] ||
    fail "smtp_fake_server is missing at $FAKE_SMTP_BIN (build it: ninja smtp_fake_server)"
}

# start_fake_smtp NAME: a fake server playing the script read from stdin (the steps of
# fake_smtp_main.cpp: send, expect, delay, tls, close, reset, stall, expect_close) to every
# connection, on a port of 127.0.0.1 that it picks itself; files in WORKDIR/fake.NAME.
# Sets FAKE_PORT.
start_fake_smtp() {
  local name=$1 dir=$WORKDIR/fake.$1
  mkdir -p "$dir"
  cat >"$dir/script"
  spawn "fake $name" "$dir/log" "$FAKE_SMTP_BIN" --script "$dir/script" --port-file "$dir/port"
  local pid=$SPAWNED_PID
  wait_until 10 "fake server $name to write its port" _fake_port_written "$dir/port" "$pid"
  FAKE_PORT=$(<"$dir/port")
  log "fake server $name on 127.0.0.1:$FAKE_PORT"
}
_fake_port_written() {
  [[ -s $1 ]] && return 0
  group_alive "$2" || fail "the fake server exited during start-up: $(cat "${1%/port}/log")"
  return 1
}
