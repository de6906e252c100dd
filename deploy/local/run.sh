#!/usr/bin/env bash
# deploy/local/run.sh: see smtp_exporter work on a fresh Debian 12, in one command.
#   - installs what building and running need (tests/support/install_deps.sh build run)
#   - builds the exporter (build/smtp_exporter)
#   - starts a real Postfix on 127.0.0.1:2525, with a private config (nothing in /etc changes)
#   - runs the exporter in the foreground on 127.0.0.1:19225, probing that Postfix with
#     deploy/local/smtp_exporter.yml; Ctrl-C stops the exporter and Postfix.
# Environment: SMTP_EXPORTER_LISTEN (default 127.0.0.1:19225), SMTP_DEMO_PORT (Postfix's port,
# default 2525), SMTP_DEMO_DIR (Postfix's files, default /var/tmp/smtp_exporter-demo),
# SKIP_DEPS=1 (skip the apt step), SMTP_EXPORTER_BINARY (use this binary instead of building
# one). Arguments are passed on to the exporter (e.g. --log.level=debug).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
listen=${SMTP_EXPORTER_LISTEN:-127.0.0.1:19225}
smtp_port=${SMTP_DEMO_PORT:-2525}
run_dir=${SMTP_DEMO_DIR:-/var/tmp/smtp_exporter-demo}

if [[ $EUID -ne 0 ]]; then
  # apt and Postfix need root.
  if command -v sudo >/dev/null; then
    echo "run.sh: needs root (apt-get, Postfix): re-running with sudo" >&2
    exec sudo --preserve-env=SMTP_EXPORTER_LISTEN,SMTP_DEMO_PORT,SMTP_DEMO_DIR,SKIP_DEPS,SMTP_EXPORTER_BINARY "$0" "$@"
  fi
  echo "run.sh: must run as root (it installs packages and starts Postfix)" >&2
  exit 1
fi

cd "$root"
if [[ -z ${SKIP_DEPS:-} ]]; then
  tests/support/install_deps.sh build run
fi

binary=${SMTP_EXPORTER_BINARY:-}
if [[ -z $binary ]]; then
  echo "run.sh: building smtp_exporter in $root/build" >&2
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C build smtp_exporter
  binary=$root/build/smtp_exporter
fi

source "$root/tests/integration/lib.sh"
lib_init "$run_dir"
stop_postfix "$run_dir" # one left by an earlier run that did not end cleanly

listen_port=${listen##*:}
listen_host=${listen%:*}
listen_host=${listen_host#[}
listen_host=${listen_host%]}
if port_open 127.0.0.1 "$smtp_port"; then
  fail "127.0.0.1:$smtp_port is already in use: stop what listens there, or pick another" \
    "port: SMTP_DEMO_PORT=2526 $0"
fi
if port_open "$listen_host" "$listen_port"; then
  fail "$listen is already in use: stop what listens there, or pick another address:" \
    "SMTP_EXPORTER_LISTEN=127.0.0.1:9126 $0"
fi

start_postfix "$run_dir" "$smtp_port"
config=$run_dir/smtp_exporter.yml
sed "s/127\.0\.0\.1:2525/127.0.0.1:$smtp_port/" deploy/local/smtp_exporter.yml >"$config"

cat <<EOF

  Postfix:        127.0.0.1:$smtp_port  ($(smtp_banner "$smtp_port"))
  Config:         $config
  Metrics:        http://$listen/metrics
  Status page:    http://$listen/
  Try:            curl -s http://$listen/metrics | grep '^smtp_'

  Ctrl-C stops the exporter and Postfix.

EOF
rc=0
"$binary" --config.file="$config" --web.listen-address="$listen" "$@" || rc=$?
echo "run.sh: the exporter exited with status $rc; stopping Postfix" >&2
exit "$rc"
