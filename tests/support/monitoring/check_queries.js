'use strict';
// check_queries.js OPTIONS DASHBOARD.json...: the dashboards' and rules' queries against what the
// exporter really serves and a real Prometheus that scraped it.
//   --metrics FILE        a scrape of the exporter's /metrics
//   --reasons FILE        probes/probe_result.cpp: the `result` values the exporter can write
//   --rules DIR           deploy/prometheus (rules and their promtool tests)
//   --prometheus URL      the Prometheus that scraped the exporter and loaded the rules
//   --rate-interval D     what $__rate_interval stands for; --range D: $__range and the span of
//                         range queries (step 1s)
//   --allow-empty NAME    a recording rule the scenario gives no data (repeatable)
//   --wait SECONDS        repeat the Prometheus checks until they pass or this time is up
// Checks, offline: every metric name a panel query, a variable, a rule or a promtool test series
// uses, and every label name of the first three, is in the scrape (dashboards may not lean on
// recording rules; rules and tests may use the rules' own names, and Prometheus's `up`); every
// `result` value they match is one the exporter writes. Online: each variable's query returns
// values; each panel query, with the variables substituted as Grafana would (All -> its
// allValue, a multi-select without All -> every value), is accepted and returns at least one
// finite sample; Prometheus loaded every rule of the files and evaluates it without error, and
// each recording rule has data.

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const { references, matcherValues } = require('./promql');
const dash = require('./dashboards');

function parseArgs(argv) {
  const opts = { allowEmpty: new Set(), dashboards: [], wait: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i];
    if (a === '--metrics') opts.metrics = value();
    else if (a === '--reasons') opts.reasons = value();
    else if (a === '--rules') opts.rules = value();
    else if (a === '--prometheus') opts.prometheus = value();
    else if (a === '--rate-interval') opts.rateInterval = value();
    else if (a === '--range') opts.range = value();
    else if (a === '--allow-empty') opts.allowEmpty.add(value());
    else if (a === '--wait') opts.wait = Number(value());
    else opts.dashboards.push(a);
  }
  return opts;
}

/// Sample names and label names of a text exposition.
function readScrape(file) {
  const metrics = new Set();
  const labels = new Set();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? /.exec(line);
    if (!m) continue;
    metrics.add(m[1]);
    for (const l of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
  }
  return { metrics, labels };
}

/// The `result` values reason_name() in probes/probe_result.cpp returns.
function readReasons(file) {
  const source = fs.readFileSync(file, 'utf8');
  const body = source.slice(source.indexOf('reason_name('));
  const reasons = new Set([...body.matchAll(/return "([a-z_]+)";/g)].map((m) => m[1]));
  reasons.delete('unknown');
  return reasons;
}

function ruleFiles(dir) {
  const rules = [];
  for (const file of ['prometheus_rules.yaml', 'prometheus_alerts.yaml']) {
    for (const group of YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8')).groups) {
      for (const rule of group.rules) rules.push({ group: group.name, file, ...rule });
    }
  }
  return rules;
}

function testSeries(dir) {
  const out = [];
  const testDir = path.join(dir, 'tests');
  for (const file of fs.readdirSync(testDir).filter((f) => f.endsWith('_test.yaml'))) {
    for (const test of YAML.parse(fs.readFileSync(path.join(testDir, file), 'utf8')).tests) {
      for (const s of test.input_series || []) out.push({ where: `${file}: ${test.name}`, expr: s.series });
    }
  }
  return out;
}

/// The offline checks: names against the scrape, result values against the exporter's. Label
/// names only where `checkLabels`: a test series may carry the labels of a user's service
/// discovery (namespace, pod), which the exporter never writes.
function checkNames(items, scrape, reasons, extraMetrics, checkLabels = true) {
  const problems = [];
  for (const { where, expr } of items) {
    let refs;
    try {
      refs = references(expr);
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
      continue;
    }
    for (const m of refs.metrics) {
      if (!scrape.metrics.has(m) && !extraMetrics.has(m)) problems.push(`${where}: metric ${m} is not in /metrics: ${expr}`);
    }
    for (const l of checkLabels ? refs.labels : []) {
      if (!scrape.labels.has(l) && !['job', 'instance'].includes(l)) problems.push(`${where}: label ${l} is on no series of /metrics: ${expr}`);
    }
    for (const matcher of refs.matchers.filter((x) => x.label === 'result')) {
      for (const v of matcherValues(matcher) || []) {
        if (v !== 'success' && !reasons.has(v)) problems.push(`${where}: result="${v}" is no outcome the exporter writes: ${expr}`);
      }
    }
  }
  return problems;
}

async function api(base, endpoint, params) {
  const url = `${base}/api/v1/${endpoint}?${new URLSearchParams(params)}`;
  const response = await fetch(url);
  const body = await response.json();
  if (body.status !== 'success') throw new Error(`${body.errorType}: ${body.error}`);
  return body.data;
}

function finite(value) {
  return Number.isFinite(Number(value[1]));
}

/// Resolves the variables of a dashboard against Prometheus; returns {values, problems}.
async function resolveVariables(base, dashboard, file, fixed) {
  const values = { ...fixed };
  const problems = [];
  for (const v of (dashboard.templating && dashboard.templating.list) || []) {
    if (v.type === 'datasource') continue;
    const { selector, label } = dash.parseVariableQuery(v.query);
    const params = {};
    if (selector) params['match[]'] = dash.substitute(selector, values);
    const found = await api(base, `label/${label}/values`, params);
    if (found.length === 0) {
      problems.push(`${file}: variable ${v.name}: ${JSON.stringify(v.query)} found no values`);
      values[v.name] = '__none__';
    } else {
      values[v.name] = v.includeAll ? v.allValue : dash.formatMulti(found);
    }
  }
  return { values, problems };
}

/// The online checks, one pass.
async function checkPrometheus(opts, rules) {
  const base = opts.prometheus;
  const problems = [];
  let count = 0;
  const now = Math.floor(Date.now() / 1000);
  const span = Number.parseInt(opts.range, 10);
  for (const file of opts.dashboards) {
    const dashboard = dash.load(file);
    const fixed = { __rate_interval: opts.rateInterval, __interval: '1s', __range: opts.range };
    const { values, problems: varProblems } = await resolveVariables(base, dashboard, file, fixed);
    problems.push(...varProblems);
    for (const { panel, target } of dash.queries(dashboard)) {
      count++;
      const where = `${file} panel ${panel.id} "${panel.title}" query ${target.refId}`;
      try {
        const expr = dash.substitute(target.expr, values);
        const data = target.instant
          ? await api(base, 'query', { query: expr, time: now })
          : await api(base, 'query_range', { query: expr, start: now - span, end: now, step: 1 });
        const samples = data.result.flatMap((s) => (s.values || [s.value]));
        if (!samples.some(finite)) problems.push(`${where}: no data (${data.result.length} series, no finite sample): ${expr}`);
      } catch (e) {
        problems.push(`${where}: ${e.message}`);
      }
    }
  }

  const loaded = new Map();
  for (const group of (await api(base, 'rules', {})).groups) {
    for (const r of group.rules) loaded.set(`${group.name}/${r.name}/${r.labels ? r.labels.severity : ''}`, r);
  }
  for (const rule of rules) {
    const name = rule.alert || rule.record;
    const key = `${rule.group}/${name}/${rule.alert ? rule.labels.severity : ''}`;
    const r = loaded.get(key);
    if (!r) {
      problems.push(`rule ${key} is not loaded in Prometheus`);
    } else if (r.health !== 'ok' || r.lastError) {
      problems.push(`rule ${key}: health ${r.health}: ${r.lastError}`);
    } else if (rule.record && !opts.allowEmpty.has(name)) {
      const data = await api(base, 'query', { query: name, time: now });
      if (!data.result.some((s) => finite(s.value))) problems.push(`recording rule ${name} has no data`);
    }
  }
  return { problems, count };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const scrape = readScrape(opts.metrics);
  const reasons = readReasons(opts.reasons);
  const rules = ruleFiles(opts.rules);
  const recorded = new Set(rules.filter((r) => r.record).map((r) => r.record));

  const dashboardItems = [];
  for (const file of opts.dashboards) {
    const dashboard = dash.load(file);
    for (const { panel, target } of dash.queries(dashboard)) {
      dashboardItems.push({ where: `${file} panel ${panel.id} "${panel.title}"`, expr: target.expr });
    }
    for (const v of (dashboard.templating && dashboard.templating.list) || []) {
      if (v.type !== 'query') continue;
      const { selector } = dash.parseVariableQuery(v.query);
      if (selector) dashboardItems.push({ where: `${file} variable ${v.name}`, expr: selector });
    }
  }
  const ruleItems = rules.map((r) => ({ where: `${r.file}: ${r.alert || r.record}`, expr: r.expr }));
  const seriesItems = testSeries(opts.rules);
  // Grafana sends the text with variables substituted; the names are the same either way, and
  // the parser needs the substituted text.
  const parseable = (e) => e.replace(/\$\{?__rate_interval\}?|\$\{?__range\}?|\$\{?__interval\}?/g, '5m')
    .replace(/\$\{?[A-Za-z_]\w*\}?/g, 'x');
  const problems = [
    ...checkNames(dashboardItems.map((i) => ({ ...i, expr: parseable(i.expr) })), scrape, reasons, new Set(['up'])),
    ...checkNames(ruleItems, scrape, reasons, new Set(['up', ...recorded])),
    ...checkNames(seriesItems, scrape, reasons, new Set(['up', ...recorded]), false),
  ];
  console.log(`names: ${dashboardItems.length} dashboard queries and variables, ${ruleItems.length} rules, ` +
    `${seriesItems.length} promtool test series checked against ${scrape.metrics.size} metric names ` +
    `and ${reasons.size} failure reasons of the exporter`);

  if (opts.prometheus) {
    const deadline = Date.now() + opts.wait * 1000;
    const started = Date.now();
    for (;;) {
      const { problems: online, count } = await checkPrometheus(opts, rules);
      if (online.length === 0 || Date.now() >= deadline) {
        problems.push(...online);
        console.log(`prometheus: ${count} panel queries run, ${rules.length} rules checked ` +
          `(${((Date.now() - started) / 1000).toFixed(1)} s${online.length ? ', failing' : ''})`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`check_queries: ${p}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`check_queries: ${e.stack || e}`);
  process.exit(1);
});
