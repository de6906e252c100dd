#!/usr/bin/env bash
# http_abuse_test.sh BINARY: the short form of tests/abuse/http_abuse.sh, with its goals
# asserted: slow readers do not blow up memory, idle and slowloris connections do not lock
# scrapers out, a small open-file limit does not turn into connect_error, wrong methods get 405.
# The attack clients come from the same build directory as BINARY (tests/abuse, tests/bench).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../abuse/http_abuse.sh" --short --assert \
  "${1:?usage: http_abuse_test.sh path/to/smtp_exporter}"
