'use strict';
// What a PromQL expression refers to, read with Prometheus's own grammar (the Lezer parser that
// Prometheus's web UI uses), not with regular expressions: metric names, label names, and the
// values that label matchers compare with.

const { parser } = require('@prometheus-io/lezer-promql');

/// Parses `expr`; throws with the position of the first syntax error.
function parse(expr) {
  const tree = parser.parse(expr);
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        throw new Error(`PromQL syntax error at offset ${node.from} in: ${expr}`);
      }
    },
  });
  return tree;
}

/// A string literal's value ("..." with escapes, '...', or `...`).
function unquote(literal) {
  if (literal.startsWith('`')) return literal.slice(1, -1);
  if (literal.startsWith("'")) {
    return JSON.parse('"' + literal.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"') + '"');
  }
  return JSON.parse(literal);
}

/// Every reference in `expr`: {metrics: Set, labels: Set, matchers: [{label, op, value}]}.
/// Metric names come from vector selectors and from __name__="..." matchers.
function references(expr) {
  const tree = parse(expr);
  const text = (node) => expr.slice(node.from, node.to);
  const metrics = new Set();
  const labels = new Set();
  const matchers = [];
  tree.iterate({
    enter(ref) {
      const node = ref.node;
      switch (node.type.name) {
        case 'VectorSelector': {
          const identifier = node.getChild('Identifier');
          if (identifier) metrics.add(text(identifier));
          break;
        }
        case 'LabelName':
          labels.add(text(node));
          break;
        case 'UnquotedLabelMatcher': {
          const label = text(node.getChild('LabelName'));
          const op = text(node.getChild('MatchOp'));
          const value = unquote(text(node.getChild('StringLiteral')));
          matchers.push({ label, op, value });
          if (label === '__name__' && op === '=') metrics.add(value);
          break;
        }
        default:
          break;
      }
    },
  });
  labels.delete('__name__');
  return { metrics, labels, matchers };
}

/// The literal values a matcher can match: the value of = and !=, the alternatives of a regex
/// made only of names (`a|b|c`); null for other regexes (nothing to check).
function matcherValues(matcher) {
  if (matcher.op === '=' || matcher.op === '!=') return [matcher.value];
  if (/^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(matcher.value)) return matcher.value.split('|');
  return null;
}

module.exports = { parse, references, matcherValues };
