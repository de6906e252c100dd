'use strict';
// check_rules.js RULES_DIR: what promtool does not check about deploy/prometheus.
//   - every alert has a severity label (warning or critical), summary and description
//     annotations, and a `for` of at least 2m (no page for one lost probe at the default 30s);
//   - every alert is tested by the promtool tests in RULES_DIR/tests firing (for each of its
//     severities) and not firing (an eval_time where it is expected silent);
//   - every alertname a test names exists (promtool passes a test of a misspelt alert that
//     expects nothing), and every recording rule is used by an alert or another rule.
// Prints a summary; exits 1 with one line per problem.

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const { references } = require('./promql');

const kSeverities = new Set(['warning', 'critical']);
const kMinForSeconds = 120;

function seconds(duration) {
  const units = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  const rest = String(duration).replace(/(\d+)(ms|s|m|h|d|w|y)/g, (_, n, unit) => {
    total += Number(n) * units[unit];
    return '';
  });
  if (rest !== '') throw new Error(`not a duration: ${duration}`);
  return total;
}

function load(file) {
  return YAML.parse(fs.readFileSync(file, 'utf8'));
}

function main(rulesDir) {
  const problems = [];
  const alerts = [];
  const records = [];
  for (const file of ['prometheus_alerts.yaml', 'prometheus_rules.yaml']) {
    for (const group of load(path.join(rulesDir, file)).groups) {
      for (const rule of group.rules) {
        if (rule.alert && file === 'prometheus_alerts.yaml') alerts.push(rule);
        else if (rule.record && file === 'prometheus_rules.yaml') records.push(rule);
        else problems.push(`${file}: ${rule.alert || rule.record}: alerts go in prometheus_alerts.yaml, recording rules in prometheus_rules.yaml`);
      }
    }
  }

  for (const alert of alerts) {
    const where = `alert ${alert.alert}`;
    const severity = alert.labels && alert.labels.severity;
    if (!kSeverities.has(severity)) problems.push(`${where}: severity label must be warning or critical, is ${severity}`);
    for (const key of ['summary', 'description']) {
      if (!alert.annotations || !String(alert.annotations[key] || '').trim()) {
        problems.push(`${where}: no ${key} annotation`);
      }
    }
    if (!alert.for || seconds(alert.for) < kMinForSeconds) {
      problems.push(`${where}: for: ${alert.for || '(none)'} is shorter than ${kMinForSeconds}s`);
    }
  }

  // Recording rules must be used: by an alert, or by another rule that is.
  const used = new Set();
  for (const rule of [...alerts, ...records]) {
    for (const metric of references(rule.expr).metrics) used.add(metric);
  }
  for (const rule of records) {
    if (!used.has(rule.record)) problems.push(`recording rule ${rule.record} is used by no rule`);
  }

  // What the promtool tests cover.
  const names = new Set(alerts.map((a) => a.alert));
  const firing = new Set();
  const silent = new Set();
  let alertCases = 0;
  let exprCases = 0;
  const testDir = path.join(rulesDir, 'tests');
  const testFiles = fs.readdirSync(testDir).filter((f) => f.endsWith('_test.yaml')).sort();
  for (const file of testFiles) {
    for (const test of load(path.join(testDir, file)).tests) {
      exprCases += (test.promql_expr_test || []).length;
      for (const c of test.alert_rule_test || []) {
        alertCases++;
        if (!names.has(c.alertname)) {
          problems.push(`${file}: test "${test.name}" at ${c.eval_time} names no alert: ${c.alertname}`);
        }
        const expected = c.exp_alerts || [];
        if (expected.length === 0) silent.add(c.alertname);
        for (const e of expected) firing.add(`${c.alertname}/${e.exp_labels && e.exp_labels.severity}`);
      }
    }
  }
  for (const alert of alerts) {
    const key = `${alert.alert}/${alert.labels.severity}`;
    if (!firing.has(key)) problems.push(`alert ${alert.alert} (${alert.labels.severity}): no test expects it to fire`);
    if (!silent.has(alert.alert)) problems.push(`alert ${alert.alert}: no test expects it silent`);
  }

  console.log(`${alerts.length} alerts (${names.size} names), ${records.length} recording rules; ` +
    `${testFiles.length} promtool test files: ${alertCases} alert cases ` +
    `(${firing.size} alert/severity pairs seen firing, ${silent.size} names seen silent), ` +
    `${exprCases} expression cases`);
  if (problems.length) {
    for (const p of problems) console.error(`check_rules: ${p}`);
    process.exit(1);
  }
}

main(process.argv[2] || 'deploy/prometheus');
