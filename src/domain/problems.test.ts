import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { problems } from './problems.js';
import { packageRoot } from '../db/package-root.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

const documented = new Map(
  [
    ...readFileSync(join(packageRoot, 'docs/errors.md'), 'utf8').matchAll(
      /^\| `([a-z_]+)` *\| (\d{3}) *\|/gm,
    ),
  ].map((m) => [m[1], Number(m[2])]),
);

test('every problem code is documented in docs/errors.md with its status', () => {
  for (const [code, { status }] of Object.entries(problems)) {
    assert.equal(documented.get(code), status, `${code} in docs/errors.md`);
  }
});

test('docs/errors.md documents no code that does not exist', () => {
  for (const code of documented.keys())
    assert.ok(code !== undefined && code in problems, `${String(code)} is not in problems.ts`);
});

test('every problem code is raised somewhere in src/', () => {
  const source = sourceFiles(join(packageRoot, 'src'))
    .filter((f) => !f.endsWith('problems.ts'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  for (const code of Object.keys(problems)) {
    assert.ok(source.includes(`'${code}'`), `${code} is never raised`);
  }
});
