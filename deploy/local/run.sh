#!/usr/bin/env bash
# deploy/local/run.sh: see smtp_exporter work on a fresh Debian 12, in one command.
#   - installs what building and running need (tests/support/install_deps.sh build run)
#   - builds the exporter (build/smtp_exporter)
#   - starts a real Postfix on 127.0.0.1:2525, with a private config (nothing in /etc changes)
#   - with --prometheus (the first argument): also a real Prometheus on 127.0.0.1:9090 that
#     scrapes the exporter with deploy/local/prometheus.yml and loads the project's rules and
#     alerts (deploy/prometheus)
#   - runs the exporter in the foreground on 127.0.0.1:19225, probing that Postfix with
#     deploy/local/smtp_exporter.yml; Ctrl-C stops the exporter, Postfix and Prometheus.
# Environment: SMTP_EXPORTER_LISTEN (default 127.0.0.1:19225), SMTP_DEMO_PORT (Postfix's port,
# default 2525), SMTP_DEMO_DIR (Postfix's files, default /var/tmp/smtp_exporter-demo),
# SMTP_DEMO_PROMETHEUS_PORT (default 9090), SMTP_DEMO_SCRAPE_INTERVAL (default 15s),
# SKIP_DEPS=1 (skip the apt step), SMTP_EXPORTER_BINARY (use this binary instead of building
# one). Other arguments are passed on to the exporter (e.g. --log.level=debug).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
listen=${SMTP_EXPORTER_LISTEN:-127.0.0.1:19225}
smtp_port=${SMTP_DEMO_PORT:-2525}
run_dir=${SMTP_DEMO_DIR:-/var/tmp/smtp_exporter-demo}
prometheus_port=${SMTP_DEMO_PROMETHEUS_PORT:-9090}
scrape_interval=${SMTP_DEMO_SCRAPE_INTERVAL:-15s}
with_prometheus=0
original_args=("$@")
if [[ ${1:-} == --prometheus ]]; then
  with_prometheus=1
  shift
fi

if [[ $EUID -ne 0 ]]; then
  # apt and Postfix need root.
  if command -v sudo >/dev/null; then
    echo "run.sh: needs root (apt-get, Postfix): re-running with sudo" >&2
    exec sudo --preserve-env=SMTP_EXPORTER_LISTEN,SMTP_DEMO_PORT,SMTP_DEMO_DIR,SMTP_DEMO_PROMETHEUS_PORT,SMTP_DEMO_SCRAPE_INTERVAL,SKIP_DEPS,SMTP_EXPORTER_BINARY \
      "$0" "${original_args[@]}"
  fi
  echo "run.sh: must run as root (it installs packages and starts Postfix)" >&2
  exit 1
fi

cd "$root"
if [[ -z ${SKIP_DEPS:-} ]]; then
  groups=(build run)
  ((with_prometheus)) && groups+=(demo-prometheus)
  tests/support/install_deps.sh "${groups[@]}"
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
    "SMTP_EXPORTER_LISTEN=127.0.0.1:19226 $0"
fi
if ((with_prometheus)) && port_open 127.0.0.1 "$prometheus_port"; then
  fail "127.0.0.1:$prometheus_port is already in use: stop what listens there, or pick another" \
    "port: SMTP_DEMO_PROMETHEUS_PORT=9091 $0 --prometheus"
fi

start_postfix "$run_dir" "$smtp_port"
config=$run_dir/smtp_exporter.yml
sed "s/127\.0\.0\.1:2525/127.0.0.1:$smtp_port/" deploy/local/smtp_exporter.yml >"$config"

prometheus_line=
if ((with_prometheus)); then
  rules=$root/deploy/prometheus
  sed -e "s|127\.0\.0\.1:19225|$listen|" -e "s|15s|$scrape_interval|" \
    -e "s|\.\./prometheus/|$rules/|" deploy/local/prometheus.yml >"$run_dir/prometheus.yml"
  start_prometheus_config "$run_dir" "$prometheus_port" "$run_dir/prometheus.yml"
  prometheus_line="Prometheus:     http://127.0.0.1:$prometheus_port/  (rules: $rules)"
fi

cat <<EOF

  Postfix:        127.0.0.1:$smtp_port  ($(smtp_banner "$smtp_port"))
  Config:         $config
  Metrics:        http://$listen/metrics
  Status page:    http://$listen/
  ${prometheus_line}
  Try:            curl -s http://$listen/metrics | grep '^smtp_'

  Ctrl-C stops everything.

EOF
rc=0
"$binary" --config.file="$config" --web.listen-address="$listen" "$@" || rc=$?
echo "run.sh: the exporter exited with status $rc; stopping the rest" >&2
exit "$rc"
