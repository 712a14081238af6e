// The committed declarations in types/ are what tsconfig.types.json emits from the JSDoc of
// src/ today (index.d.ts builds on them), so a change to the element cannot leave them stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const packageDir = join(import.meta.dirname, '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

test('types/ holds exactly the declarations emitted from src/', async () => {
  const out = await mkdtemp(join(tmpdir(), 'herald-inbox-types-'));
  try {
    await promisify(execFile)(process.execPath, [
      tsc,
      '-p',
      join(packageDir, 'tsconfig.types.json'),
      '--outDir',
      out,
    ]);
    const emitted = (await readdir(out)).sort();
    assert.deepEqual((await readdir(join(packageDir, 'types'))).sort(), emitted);
    for (const file of emitted)
      assert.equal(
        await readFile(join(packageDir, 'types', file), 'utf8'),
        await readFile(join(out, file), 'utf8'),
        `types/${file} is stale: npm run types -w @herald/inbox`,
      );
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
