'use strict';
// check_schema.js WORK_DIR DASHBOARD.json...: type-checks each dashboard against Grafana's own
// schema types (@grafana/schema) with the TypeScript compiler, --strict. Each dashboard becomes a
// typed constant, and so do each panel's options, field config and queries, against the types
// of its panel plugin (the dashboard type alone leaves options untyped). A panel type that is
// not one of Grafana's built-in panels below is an error.
// Writes WORK_DIR/dashboards.ts (with a node_modules link to NODE_PATH); exits 1 on any error.

const fs = require('fs');
const path = require('path');
const ts = require('typescript');
const { load, panels } = require('./dashboards');

// Built-in panel plugins this project may use, with the module of their generated types.
const kPanelTypes = {
  stat: { module: 'stat/panelcfg/x/StatPanelCfg_types.gen', custom: false },
  table: { module: 'table/panelcfg/x/TablePanelCfg_types.gen', custom: true },
  timeseries: { module: 'timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen', custom: true },
  heatmap: { module: 'heatmap/panelcfg/x/HeatmapPanelCfg_types.gen', custom: true },
  'state-timeline': { module: 'statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen', custom: true },
  bargauge: { module: 'bargauge/panelcfg/x/BarGaugePanelCfg_types.gen', custom: false },
};

const kPrelude = `import type { Dashboard, DataQuery, FieldConfig, FieldConfigSource } from '@grafana/schema';
${Object.entries(kPanelTypes).map(([type, t]) =>
    `import type * as ${ident(type)} from '@grafana/schema/dist/esm/raw/composable/${t.module}';`).join('\n')}

// The schema's string enums as the strings JSON holds ("absolute", not ThresholdsMode.Absolute).
type Literal<T> =
  T extends string ? \`\${T}\` :
  T extends number | boolean | null | undefined ? T :
  T extends (infer U)[] ? Literal<U>[] :
  T extends object ? { [K in keyof T]: Literal<T[K]> } : T;

// A Prometheus query as Grafana's Prometheus data source stores it (its PrometheusDataQuery kind).
interface PrometheusQuery extends DataQuery {
  datasource?: { type: 'prometheus'; uid: string };
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
  editorMode?: 'code' | 'builder';
}
`;

function ident(s) {
  return s.replace(/[^A-Za-z0-9]/g, '_');
}

function literal(value) {
  return JSON.stringify(value, null, 2);
}

function generate(files) {
  const parts = [kPrelude];
  const problems = [];
  for (const file of files) {
    const dashboard = load(file);
    const name = ident(path.basename(file, '.json'));
    parts.push(`// ${file}\nexport const ${name}: Literal<Dashboard> = ${literal(dashboard)};\n`);
    for (const panel of panels(dashboard)) {
      const where = `${file} panel ${panel.id} "${panel.title}"`;
      const type = kPanelTypes[panel.type];
      if (!type) {
        problems.push(`${where}: type ${panel.type} is not one of the built-in panels ${Object.keys(kPanelTypes).join(', ')}`);
        continue;
      }
      const ns = ident(panel.type);
      const prefix = `${name}_panel_${panel.id}`;
      const fieldConfig = panel.fieldConfig || {};
      const custom = fieldConfig.defaults && fieldConfig.defaults.custom;
      parts.push(`// ${where}: options, field config, queries
export const ${prefix}_options: Literal<${ns}.Options> = ${literal(panel.options)};
export const ${prefix}_fieldConfig: Literal<FieldConfigSource> = ${literal(fieldConfig)};
export const ${prefix}_targets: Literal<PrometheusQuery>[] = ${literal(panel.targets || [])};
`);
      if (type.custom) {
        parts.push(`// ${where}: fieldConfig.defaults.custom
export const ${prefix}_custom: Literal<${ns}.FieldConfig> = ${literal(custom)};
`);
      } else if (custom !== undefined) {
        problems.push(`${where}: a ${panel.type} panel has no custom field config`);
      }
      // An override's values are `unknown` to the schema: type each by the field it sets.
      (fieldConfig.overrides || []).forEach((override, i) => {
        override.properties.forEach((property, j) => {
          const [, customKey] = /^custom\.(.*)$/.exec(property.id) || [];
          const fieldType = customKey
            ? `${type.custom ? `${ns}.FieldConfig` : 'never'}[${JSON.stringify(customKey)}]`
            : `FieldConfig[${JSON.stringify(property.id)}]`;
          parts.push(`// ${where}: override ${i} property ${property.id}
export const ${prefix}_override_${i}_${j}: Literal<NonNullable<${fieldType}>> = ${literal(property.value)};
`);
        });
      });
    }
  }
  return { source: parts.join('\n'), problems };
}

function main(workDir, files) {
  const { source, problems } = generate(files);
  fs.mkdirSync(workDir, { recursive: true });
  const tsFile = path.join(workDir, 'dashboards.ts');
  fs.writeFileSync(tsFile, source);
  const link = path.join(workDir, 'node_modules');
  if (!fs.existsSync(link)) fs.symlinkSync(process.env.NODE_PATH, link);

  const program = ts.createProgram([tsFile], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: [],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const lines = source.split('\n');
  for (const d of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
    if (!d.file) {
      problems.push(message);
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    let i = line;
    while (i > 0 && !lines[i].startsWith('// ')) i--;
    problems.push(`${lines[i].slice(3)}\n  ${path.basename(tsFile)}:${line + 1}: ${lines[line].trim()}\n  ${message}`);
  }
  const count = files.reduce((n, f) => n + panels(load(f)).length, 0);
  if (problems.length) {
    for (const p of problems) console.error(`check_schema: ${p}`);
    process.exit(1);
  }
  console.log(`${files.length} dashboards, ${count} panels: valid against @grafana/schema ` +
    `(TypeScript ${ts.version}, --strict)`);
}

main(process.argv[2], process.argv.slice(3));
