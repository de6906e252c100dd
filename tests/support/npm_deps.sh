#!/usr/bin/env bash
# npm_deps.sh: installs the npm packages that check the alert rules and dashboards (the exact
# versions of tests/support/monitoring/package-lock.json) into a cache outside the repository,
# $SMTP_TEST_CACHE/npm-monitoring/<hash of the lock file>/node_modules, once per lock file;
# prints that directory. tests/support/install_deps.sh runs it (test), and so do the tests that
# need it, so a test also works on a machine where only node and npm were installed.
# Exit codes: 0 done, 1 npm failed, 77 node or npm is missing.
set -euo pipefail

SMTP_TEST_CACHE=${SMTP_TEST_CACHE:-/var/cache/smtp_exporter-test}
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/monitoring" && pwd)

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "npm_deps: $tool is not installed (tests/support/install_deps.sh test installs it)" >&2
    exit 77
  fi
done

hash=$(cat "$source_dir/package.json" "$source_dir/package-lock.json" | sha256sum | cut -c1-16)
dest=$SMTP_TEST_CACHE/npm-monitoring/$hash
if [[ ! -f $dest/.complete ]]; then
  mkdir -p "$SMTP_TEST_CACHE/npm-monitoring"
  # Installed beside, then renamed into place: a run that is interrupted, or another one at the
  # same time, never sees half a tree.
  tmp=$(mktemp -d "$SMTP_TEST_CACHE/npm-monitoring/.install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  cp "$source_dir/package.json" "$source_dir/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2; then
    echo "npm_deps: npm ci failed in $tmp" >&2
    exit 1
  fi
  chmod 755 "$tmp"
  touch "$tmp/.complete"
  [[ -f $dest/.complete ]] || rm -rf "$dest" # what an interrupted older version left
  if ! mv -T "$tmp" "$dest" 2>/dev/null && [[ ! -f $dest/.complete ]]; then
    echo "npm_deps: cannot move $tmp to $dest" >&2
    exit 1
  fi
fi
echo "$dest/node_modules"
