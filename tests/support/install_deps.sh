#!/usr/bin/env bash
# Installs what building, testing or running smtp_exporter needs on Debian 12.
#
#   tests/support/install_deps.sh [build] [test] [run] [demo-prometheus] [container]
#   (default: build test)
#
#   build  compiler, CMake/Ninja, the libraries, clang-format, clang and libFuzzer (tests/fuzz)
#   test   real MTAs and Prometheus for the integration tests: Postfix (installed), Exim and
#          OpenSMTPD (their .debs unpacked into $SMTP_TEST_CACHE, because they conflict with
#          Postfix in apt), prometheus/promtool, check_smtp, jq, shellcheck, and a DNS server
#          for the test zone of the MX tests (dnsmasq from dnsmasq-base, dig to check it),
#          systemd-analyze (systemd_test.sh), node with the npm packages of
#          tests/support/npm (kubernetes_test.sh, alert_rules_test.sh, dashboards_test.sh),
#          installed into $SMTP_TEST_CACHE/npm, and Nagios 4 and Icinga 2 to run and validate
#          the Nagios plugin face, and htpasswd (apache2-utils) for the bcrypt hashes of
#          web_config_test.sh
#   run    what deploy/local/run.sh needs besides the build: Postfix, curl, openssl
#   demo-prometheus  Prometheus, for deploy/local/run.sh --prometheus
#   container  what deploy/docker/test_image.sh needs: podman, runc, mmdebstrap (and Postfix)
#
# Idempotent and quick on a second run: apt is only touched when something is missing.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SMTP_TEST_CACHE=${SMTP_TEST_CACHE:-/var/cache/smtp_exporter-test}

build_packages=(cmake ninja-build g++ prometheus-cpp-dev libyaml-cpp-dev libboost-dev
  libboost-system-dev libssl-dev libcrypt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libc-ares-dev zlib1g-dev nlohmann-json3-dev libcli11-dev clang-format git curl ca-certificates
  openssl procps iproute2 clang libclang-rt-14-dev)
# The runtime libraries of exim4-daemon-light and opensmtpd, whose binaries are only unpacked.
# (From `apt-cache show`'s Depends, minus what every Debian system has.)
exim_libs=(libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libpcre2-8-0 libnsl2 libdb5.3 libcrypt1)
opensmtpd_libs=(libevent-2.1-7 libssl3 libcrypt1 libdb5.3 libpam0g zlib1g)
test_packages=(postfix prometheus monitoring-plugins-basic jq shellcheck curl ca-certificates openssl
  apache2-utils
  procps iproute2 adduser gzip dnsmasq-base bind9-dnsutils systemd chromium "${exim_libs[@]}")
run_packages=(postfix curl ca-certificates openssl procps iproute2)
container_packages=(podman runc mmdebstrap util-linux curl ca-certificates openssl procps iproute2)

log() { printf 'install_deps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

want_build=0 want_test=0 want_run=0 want_demo_prometheus=0 want_container=0
(($# == 0)) && set -- build test
for arg in "$@"; do
  case $arg in
    build) want_build=1 ;;
    test) want_test=1 ;;
    run) want_run=1 ;;
    demo-prometheus) want_demo_prometheus=1 ;;
    container) want_container=1 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (expected build, test, run, demo-prometheus or container)" ;;
  esac
done

if [[ $EUID -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    log "not root: re-running with sudo"
    exec sudo --preserve-env=SMTP_TEST_CACHE "$0" "$@"
  fi
  die "must run as root (it installs packages with apt-get)"
fi

installed() { # PACKAGE: 0 if dpkg has it fully installed
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

apt_updated=0
apt_update_once() {
  if ((apt_updated == 0)); then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

# apt_install [--no-install-recommends] PKG...: installs those not yet installed.
apt_install() {
  local opts=() missing=() p
  while [[ ${1:-} == --* ]]; do opts+=("$1"); shift; done
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  apt_update_once
  log "apt-get install ${opts[*]} ${missing[*]}"
  apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
}

# Keep package installs from starting services (Postfix, Prometheus) on this machine.
ensure_policy_rc_d() {
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    log "writing /usr/sbin/policy-rc.d (exit 101: packages do not start services)"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
}

install_postfix() {
  installed postfix && return 0
  ensure_policy_rc_d
  echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
  apt_install postfix
}

ensure_system_user() { # NAME
  getent passwd "$1" >/dev/null && return 0
  log "adding system user $1"
  adduser --system --group --no-create-home --allow-bad-names "$1" >/dev/null
}

# unpack_debs NAME PKG...: apt-get download PKGs and dpkg-deb -x them into $SMTP_TEST_CACHE/NAME.
# A stamp written last makes an interrupted unpack start over.
unpack_debs() {
  local dest=$SMTP_TEST_CACHE/$1 tmp deb count=0
  shift
  [[ -f $dest/.complete ]] && return 0
  apt_update_once
  log "unpacking $* into $dest"
  rm -rf "$dest"
  mkdir -p "$dest/root" "$SMTP_TEST_CACHE/debs"
  tmp=$(mktemp -d)
  mkdir "$tmp/debs"
  chmod 755 "$tmp" "$tmp/debs" # apt's _apt user downloads into it
  if ! (cd "$tmp/debs" && apt-get download -qq "$@") 2>"$tmp/err"; then
    die "apt-get download $* failed: $(cat "$tmp/err")"
  fi
  for deb in "$tmp"/debs/*.deb; do
    [[ -e $deb ]] || break
    dpkg-deb -x "$deb" "$dest/root"
    mv "$deb" "$SMTP_TEST_CACHE/debs/"
    count=$((count + 1))
  done
  rm -rf "$tmp"
  ((count == $#)) || die "apt-get download $* fetched $count of $# packages"
  printf '%s\n' "$@" >"$dest/.complete"
}

# check_libs BINARY: every shared library it needs resolves.
check_libs() {
  local missing
  missing=$(ldd "$1" 2>&1 | grep 'not found' || true)
  [[ -z $missing ]] || die "$1 lacks libraries:"$'\n'"$missing"
}

install_exim() {
  apt_install "${exim_libs[@]}"
  unpack_debs exim exim4-daemon-light exim4-base exim4-config
  check_libs "$SMTP_TEST_CACHE/exim/root/usr/sbin/exim4"
  ensure_system_user Debian-exim
}

install_opensmtpd() {
  apt_install "${opensmtpd_libs[@]}"
  unpack_debs opensmtpd opensmtpd
  check_libs "$SMTP_TEST_CACHE/opensmtpd/root/usr/sbin/smtpd"
  ensure_system_user opensmtpd
  ensure_system_user opensmtpq
  mkdir -p /var/lib/opensmtpd/empty
}

# node and npm: Debian's, unless a node with its own npm is there already (NodeSource's nodejs
# bundles npm and conflicts with Debian's npm package). The packages of tests/support/npm go
# to $SMTP_TEST_CACHE/npm, exactly as package-lock.json pins them; again only when it changed.
install_npm_packages() {
  local dest=$SMTP_TEST_CACHE/npm src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/npm
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  if [[ -d $dest/node_modules ]] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
    return 0
  fi
  log "npm ci into $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    die "npm ci in $dest failed"
}

if ((want_build)); then
  apt_install "${build_packages[@]}"
fi
if ((want_run)); then
  install_postfix
  apt_install "${run_packages[@]}"
fi
if ((want_demo_prometheus)); then
  apt_install --no-install-recommends prometheus
fi
if ((want_test)); then
  install_postfix
  apt_install --no-install-recommends prometheus nagios4-core icinga2-bin
  apt_install "${test_packages[@]}"
  install_exim
  install_opensmtpd
  install_npm_packages
fi
if ((want_container)); then
  install_postfix
  apt_install "${container_packages[@]}"
fi
log "done"
