// The command line as a person meets it: --version, help for every command without side effects
// (`herald migrate --help` must not migrate), unknown commands refused with the usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

test('every command and role explains itself with --help and does nothing else', () => {
  const commands = [
    ['start'],
    ['api'],
    ['query'],
    ['worker'],
    ['scheduler'],
    ['console'],
    ['worker', 'scheduler'],
    ['migrate'],
    ['retention', '--dry-run'],
    ['service', 'create', 'billing'],
    ['key', 'revoke', 'hk_x'],
    ['console-user', 'create', 'a@example.com'],
  ];
  for (const command of commands) {
    const run = herald([...command, '--help']);
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
