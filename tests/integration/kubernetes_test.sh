#!/usr/bin/env bash
# kubernetes_test.sh BINARY: the Kubernetes manifests of deploy/kubernetes, checked offline.
#   - kubectl kustomize renders deploy/kubernetes and deploy/kubernetes/sharded (when kubectl
#     is installed; kubernetes_manifests.js resolves the kustomizations itself too, and both
#     must agree)
#   - kubernetes_manifests.js validates every object against kubernetes-models' schemas
#     (unknown field names included) and checks the hardening, probes, resources, config
#     mount, Service/ServiceMonitor wiring and the shards; every flag the pods pass must be
#     one `smtp_exporter --help` lists
#   - the ConfigMap's config passes `smtp_exporter --config.check`; the PrometheusRule's rules
#     pass `promtool check rules`
#   - the PrometheusRule is the one deploy/kubernetes/generate_rules.sh makes from
#     deploy/prometheus/*.yaml (or the placeholder while those do not exist), and the script
#     itself turns sample rule files into a PrometheusRule holding their groups
# Needs node and the npm packages that tests/support/install_deps.sh test installs into
# $SMTP_TEST_CACHE/npm; exits 77 without node or npm.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: kubernetes_test.sh BINARY}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "kubernetes_test: node or npm is missing: skipped ($INSTALL_HINT)" >&2
  exit 77
fi
test_init kubernetes 120
require_binary "$binary"
modules=$SMTP_TEST_CACHE/npm/node_modules
[[ -d $modules/kubernetes-models && -d $modules/@kubernetes-models/prometheus-operator ]] ||
  fail "the npm packages are not installed in $SMTP_TEST_CACHE/npm ($INSTALL_HINT)"
command -v promtool >/dev/null || fail "promtool is not installed ($INSTALL_HINT)"
kube=$REPO_ROOT/deploy/kubernetes

js_args=(--repo "$REPO_ROOT" --help-text "$WORKDIR/help.txt" --write-rules "$WORKDIR/rules.yaml")
"$binary" --help >"$WORKDIR/help.txt" 2>&1 || fail "smtp_exporter --help failed: $(cat "$WORKDIR/help.txt")"

if command -v kubectl >/dev/null; then
  for dir in deploy/kubernetes deploy/kubernetes/sharded; do
    out=$WORKDIR/$(basename "$dir").yaml
    kubectl kustomize "$REPO_ROOT/$dir" >"$out" 2>"$WORKDIR/kustomize.err" ||
      fail "kubectl kustomize $dir: $(cat "$WORKDIR/kustomize.err")"
    js_args+=(--rendered "$dir=$out")
  done
else
  log "kubectl is not installed: the manifests are rendered by the test's own resolver only"
fi

# generate_rules.sh, on sample rule files in a copy of the layout it expects.
sample=$WORKDIR/sample/deploy
mkdir -p "$sample/kubernetes/base" "$sample/prometheus"
cp "$kube/generate_rules.sh" "$sample/kubernetes/"
cat >"$sample/prometheus/prometheus_rules.yaml" <<'EOF'
# recording rules
groups:
  - name: smtp.records
    rules:
      - record: target:smtp_probe_success:avg5m
        expr: avg_over_time(smtp_probe_success[5m])
EOF
cat >"$sample/prometheus/prometheus_alerts.yaml" <<'EOF'
groups:
- name: smtp.alerts
  rules:
  - alert: SmtpDown
    expr: |
      smtp_probe_success == 0
    for: 5m
    annotations:
      summary: "{{ $labels.target }} is down"
EOF
"$sample/kubernetes/generate_rules.sh" >"$WORKDIR/generate.out" 2>&1 ||
  fail "generate_rules.sh on sample rule files: $(cat "$WORKDIR/generate.out")"
"$sample/kubernetes/generate_rules.sh" --check >>"$WORKDIR/generate.out" 2>&1 ||
  fail "generate_rules.sh --check right after generating: $(cat "$WORKDIR/generate.out")"
js_args+=(--generated-rule "$sample/kubernetes/base/prometheusrule.yaml"
  --rule-sources "$sample/prometheus/prometheus_rules.yaml,$sample/prometheus/prometheus_alerts.yaml")

NODE_PATH=$modules node "$LIB_DIR/kubernetes_manifests.js" "${js_args[@]}" ||
  fail "kubernetes_manifests.js found problems (the FAIL lines above)"

if [[ -f $REPO_ROOT/deploy/prometheus/prometheus_alerts.yaml ||
  -f $REPO_ROOT/deploy/prometheus/prometheus_rules.yaml ]]; then
  "$kube/generate_rules.sh" --check || fail "base/prometheusrule.yaml is stale: run deploy/kubernetes/generate_rules.sh"
  log "ok: base/prometheusrule.yaml is generated from deploy/prometheus"
else
  assert_contains "$(head -n 1 "$kube/base/prometheusrule.yaml")" PLACEHOLDER \
    "base/prometheusrule.yaml while deploy/prometheus has no rule files"
fi

out=$(promtool check rules "$WORKDIR/rules.yaml" 2>&1) ||
  fail "promtool check rules on the PrometheusRule's groups: $out"
log "ok: promtool check rules: ${out//$'\n'/ }"

out=$("$binary" --config.check --config.file="$kube/base/smtp_exporter.yml" 2>&1) ||
  fail "smtp_exporter --config.check on the ConfigMap's config: $out"
assert_contains "$out" "OK" "smtp_exporter --config.check on deploy/kubernetes/base/smtp_exporter.yml"
