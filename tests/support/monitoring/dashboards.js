'use strict';
// Reading Grafana dashboards as Grafana would run them against Prometheus: their panels, their
// queries, their template variables, and the text Grafana sends after substituting those.

const fs = require('fs');

function load(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/// Every panel, those inside rows included, rows excluded.
function panels(dashboard) {
  const out = [];
  for (const p of dashboard.panels || []) {
    if (p.type === 'row') out.push(...(p.panels || []));
    else out.push(p);
  }
  return out;
}

/// Every query of every panel: {panel, target, expr}.
function queries(dashboard) {
  const out = [];
  for (const panel of panels(dashboard)) {
    for (const target of panel.targets || []) out.push({ panel, target, expr: target.expr });
  }
  return out;
}

/// Grafana's Prometheus variable query `label_values(SELECTOR, LABEL)` (or
/// `label_values(LABEL)`): {selector, label}; throws for any other kind.
function parseVariableQuery(query) {
  const text = typeof query === 'string' ? query : query.query;
  const m = /^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(text);
  if (!m) throw new Error(`unsupported variable query: ${text}`);
  return { selector: m[1] || null, label: m[2] };
}

/// Grafana's formatting of a multi-value variable in a Prometheus query: the values, regex
/// escaped, as one alternation.
function formatMulti(values) {
  const escaped = values.map((v) => v.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

/// `text` with each `$name` and `${name}` replaced from `values` (longest names first, so $job
/// never eats $jobs). Throws if a variable is left.
function substitute(text, values) {
  let out = text;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    out = out.split('${' + name + '}').join(values[name]).split('$' + name).join(values[name]);
  }
  const left = /\$\{?[A-Za-z_]\w*/.exec(out);
  if (left) throw new Error(`variable ${left[0]} has no value in: ${text}`);
  return out;
}

module.exports = { load, panels, queries, parseVariableQuery, formatMulti, substitute };
