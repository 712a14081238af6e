// npm run test:faults [-- --smoke] [--seed N] [--only name,name] [--write-docs]
// Runs the fault scenarios one after another, prints each one's figures, and fails if any
// accepted notification was lost, any phantom appeared, or a scenario's own check failed.
// With --write-docs the figures replace the results section of docs/reliability.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../src/db/package-root.js';
import type { Figures } from './harness.js';
import { scenarios, smokeSkipped } from './scenarios.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    seed: { type: 'string', default: '20261124' },
    only: { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);
// --smoke alone (CI) leaves out the scenarios kept for full runs (smokeSkipped).
const names =
  values.only?.split(',') ?? Object.keys(scenarios).filter((n) => !(values.smoke && smokeSkipped.has(n)));

const rows: Figures[] = [];
let passed = 0;
let failed = 0;
for (const name of names) {
  const scenario = scenarios[name];
  if (scenario === undefined) {
    process.stderr.write(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n# ${name} (seed ${String(seed)}${values.smoke ? ', smoke' : ''})\n`);
  try {
    const result = await scenario({ seed, smoke: values.smoke });
    const { extraFailures, ...figures } = result;
    rows.push(figures);
    const failures = [...extraFailures];
    if (figures.lost > 0) failures.push(`${String(figures.lost)} accepted deliveries lost`);
    if (figures.phantom > 0) failures.push(`${String(figures.phantom)} phantoms`);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    if (failures.length === 0) {
      passed += 1;
      process.stdout.write(`ok - ${name}\n`);
    } else {
      failed += 1;
      process.stdout.write(`not ok - ${name}: ${failures.join('; ')}\n`);
    }
  } catch (error) {
    failed += 1;
    process.stdout.write(
      `not ok - ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
}

const header =
  '| scenario | requests | accepted | delivered | lost | duplicated | phantom | dead | ambiguous | seconds | faults injected | recovery |';
const table = [
  header,
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${String(r.requests)} | ${String(r.accepted)} | ${String(r.delivered)} | ${String(r.lost)} | ${String(r.duplicated)} | ${String(r.phantom)} | ${String(r.dead)} | ${String(r.ambiguous)} | ${String(r.seconds)} | ${r.faults} | ${r.recovery} |`,
  ),
].join('\n');
process.stdout.write(`\n${table}\n`);

if (values['write-docs']) {
  const path = join(packageRoot, 'docs/reliability.md');
  const doc = readFileSync(path, 'utf8');
  const start = '<!-- results:start -->';
  const end = '<!-- results:end -->';
  const command = `npm run test:faults -- --seed ${String(seed)}${values.smoke ? ' --smoke' : ''}`;
  const section = `${start}\nCommand: \`${command}\`, ${new Date().toISOString().slice(0, 10)}.\n\n${table}\n${end}`;
  writeFileSync(path, doc.replace(new RegExp(`${start}[\\s\\S]*${end}`), section));
}

process.stdout.write(`\n${String(passed)} passed, ${String(failed)} failed\n`);
process.exit(failed === 0 ? 0 : 1);
