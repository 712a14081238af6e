// The command line as a person meets it: --version, help for every command without side effects
// (`herald migrate --help` must not migrate), unknown commands refused with the usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/db/package-root.js';

const tsx = join(packageRoot, 'node_modules', '.bin', 'tsx');
const main = join(packageRoot, 'src', 'main.ts');

function herald(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // A database that does not exist on a port nothing listens on: a command that touched the
  // database would fail; an embedded PostgreSQL would not be started either.
  const result = spawnSync(tsx, [main, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', LOG_LEVEL: 'error' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('herald --version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-v']) {
    const run = herald([flag]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, `herald ${version}\n`);
  }
});

/** `herald` as a child process, without blocking: several run at once. */
function heraldAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(tsx, [main, ...args], {
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', LOG_LEVEL: 'error' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('every command and role explains itself with --help and does nothing else', async () => {
  const commands = [
    ['start'],
    ['api'],
    ['query'],
    ['worker'],
    ['scheduler'],
    ['console'],
    ['intake'],
    ['worker', 'scheduler'],
    ['migrate'],
    ['retention', '--dry-run'],
    ['service', 'create', 'billing'],
    ['key', 'revoke', 'hk_x'],
    ['console-user', 'create', 'a@example.com'],
    ['engagement', 'rebuild'],
    ['settings', 'set', 'claim-batch-size', '1'],
  ];
  // Three at a time: each is a Node start-up, and they are independent.
  const runs = new Map<string[], Awaited<ReturnType<typeof heraldAsync>>>();
  for (let i = 0; i < commands.length; i += 3) {
    const group = commands.slice(i, i + 3);
    const results = await Promise.all(group.map((command) => heraldAsync([...command, '--help'])));
    group.forEach((command, j) => runs.set(command, results[j] ?? { status: null, stdout: '', stderr: '' }));
  }
  for (const [command, run] of runs) {
    assert.equal(run.status, 0, `${command.join(' ')}: ${run.stderr}`);
    assert.match(run.stdout, new RegExp(`^usage: herald ${command[0] ?? ''}`), command.join(' '));
    assert.equal(run.stderr, '', `${command.join(' ')} printed no error: it touched nothing`);
  }
});

test('an unknown command is refused with the usage', () => {
  for (const args of [['frobnicate'], ['frobnicate', '--help']]) {
    const run = herald(args);
    assert.equal(run.status, 2);
    assert.match(run.stdout + run.stderr, /usage: herald <command>/);
  }
});
