#!/usr/bin/env bash
# alert_rules_test.sh [BINARY]: the Prometheus rules of deploy/prometheus, offline.
#   1. promtool check rules: both files parse, expressions and templates are valid;
#   2. promtool test rules deploy/prometheus/tests/*_test.yaml: every alert fires where its
#      test says and stays silent where it says (series as Prometheus holds them);
#   3. tests/support/monitoring/check_rules.js: every alert has a severity, summary and
#      description and a `for` of at least 2m, and the tests above expect each alert firing (at
#      each severity) and silent; every recording rule is used.
# (That the rules' metric names exist in the exporter's /metrics, and that a real Prometheus
# loads and evaluates them, is dashboards_test.sh's part.) Needs promtool and node: exit 77
# without them. The exporter binary (ctest passes it) is not used.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in promtool node npm; do
  command -v "$tool" >/dev/null || {
    echo "SKIP: $tool is not installed ($INSTALL_HINT)"
    exit 77
  }
done
test_init alert_rules 120
rules=$REPO_ROOT/deploy/prometheus

log "--- promtool check rules"
promtool check rules "$rules/prometheus_rules.yaml" "$rules/prometheus_alerts.yaml" \
  >"$WORKDIR/check.out" 2>&1 || fail "promtool check rules:"$'\n'"$(cat "$WORKDIR/check.out")"
log "ok: $(grep -c SUCCESS "$WORKDIR/check.out") rule files valid"

log "--- promtool test rules"
tests=("$rules"/tests/*_test.yaml)
# promtool resolves rule_files relative to each test file.
promtool test rules "${tests[@]}" >"$WORKDIR/test.out" 2>&1 ||
  fail "promtool test rules:"$'\n'"$(cat "$WORKDIR/test.out")"
passed=$(grep -c '^  SUCCESS' "$WORKDIR/test.out") || true
assert_eq "${#tests[@]}" "$passed" "promtool test files that pass"

log "--- severities, annotations, for, and what the tests cover"
node_modules=$(npm_modules yaml @prometheus-io/lezer-promql)
NODE_PATH=$node_modules node "$REPO_ROOT/tests/support/monitoring/check_rules.js" "$rules" \
  >"$WORKDIR/coverage.out" 2>&1 || fail "check_rules.js:"$'\n'"$(cat "$WORKDIR/coverage.out")"
log "ok: $(cat "$WORKDIR/coverage.out")"
