// npm run test:pack: Herald as a user gets it. `npm pack` (whose prepack builds) makes the
// tarball, its file list is checked, it is installed from the registry into an empty folder, and
// `npx herald` runs there: --version, then `start` on the embedded PostgreSQL, which must keep its
// files in that folder's ./data. One notification is sent with the development API key and
// delivered, then SIGTERM stops Herald, which must exit 0 with its PostgreSQL stopped.
// It needs the npm registry and takes 1 to 2 minutes, so CI runs it as its own step (.ci/run).
// Only processes started here are signalled, by pid; the temporary folder is always removed.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema } from '../../src/config/schema.js';
import { packageRoot } from '../../src/db/package-root.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

interface PackedFile {
  path: string;
  mode: number;
}

const started = Date.now();
const step = (what: string) => {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
};

/**
 * The environment of the installed Herald: this one without any Herald setting (CI sets
 * DATABASE_URL, which would skip the embedded PostgreSQL) and without npm's own variables of
 * `npm run test:pack` (npm_config_local_prefix would point the inner npm at this checkout).
 */
function cleanEnv(): Record<string, string> {
  const settings = new Set([...Object.keys(ConfigSchema.properties), 'PORT']);
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !settings.has(entry[0]) && !/^npm_/i.test(entry[0]),
    ),
  );
}

function run(command: string, args: string[], cwd: string, env: Record<string, string>): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 600_000 });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${String(result.status ?? result.signal)}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** The tarball holds what Herald reads at run time, and nothing of the checkout's tooling. */
function checkContents(files: PackedFile[]): void {
  const paths = files.map((f) => f.path);
  for (const needed of [
    'package.json',
    'dist/src/main.js',
    'migrations/0001_core.sql',
    'migrations/archive/0001_archive.sql',
    'src/console/views/layout.liquid',
    'src/console/assets/console.css',
    'src/query/inbox-page/index.html',
    // The inbox element's modules, which the query role serves at /inbox/<name>.js.
    'packages/inbox/src/herald-inbox.js',
  ]) {
    assert.ok(paths.includes(needed), `the tarball lacks ${needed}`);
  }
  const stray = paths.filter(
    (p) =>
      /^(packages\/(?!inbox\/src\/[\w-]+\.js$)|(test|bench|scripts|docs|ops|node_modules|data)\/)/.test(p) ||
      p.endsWith('.ts') ||
      p.endsWith('.map') ||
      p.endsWith('tsconfig.json'),
  );
  assert.deepEqual(stray, [], 'the tarball holds files Herald does not run');
  const main = files.find((f) => f.path === 'dist/src/main.js');
  assert.ok(main !== undefined && (main.mode & 0o111) !== 0, 'dist/src/main.js is not executable');
}

async function expectStatus(url: string, status: number, init?: RequestInit): Promise<unknown> {
  const res = await fetch(url, init);
  const text = await res.text();
  assert.equal(res.status, status, `${init?.method ?? 'GET'} ${url}: ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

/** Stops a PostgreSQL left running in `pgData` (Herald killed or failed): only ours, by pid. */
async function stopOrphanedPostgres(pgData: string): Promise<void> {
  const pidFile = join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const cmdline = existsSync(`/proc/${String(pid)}/cmdline`)
    ? readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8')
    : '';
  if (Number.isInteger(pid) && pid > 0 && cmdline.includes(pgData)) {
    step(`stopping the PostgreSQL left running (pid ${String(pid)})`);
    process.kill(pid, 'SIGINT'); // fast shutdown
    await waitFor('the orphaned PostgreSQL to stop', () => !existsSync(`/proc/${String(pid)}`), 30_000);
  }
}

async function main(): Promise<void> {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  const dir = mkdtempSync(join(tmpdir(), 'herald-pack-'));
  // Run as root, PostgreSQL runs as the postgres OS user, which must reach the folder.
  chmodSync(dir, 0o755);
  const app = join(dir, 'app');
  const env = cleanEnv();
  let npx: ChildProcess | undefined;
  let heraldPid: number | undefined;
  try {
    step('npm pack (prepack builds dist/)');
    const packed = JSON.parse(
      run('npm', ['pack', '--json', '--pack-destination', dir], packageRoot, env),
    ) as {
      filename: string;
      size: number;
      files: PackedFile[];
    }[];
    const tarball = packed[0];
    assert.ok(tarball !== undefined && packed.length === 1, 'npm pack made exactly one tarball');
    checkContents(tarball.files);
    step(`${tarball.filename}: ${String(tarball.files.length)} files, ${String(tarball.size)} bytes`);

    mkdirSync(app);
    run('npm', ['init', '-y'], app, env);
    step('npm install <tarball> into an empty folder');
    run('npm', ['install', '--no-audit', '--no-fund', join(dir, tarball.filename)], app, env);
    assert.equal(existsSync(join(app, 'node_modules', '@herald')), false, 'workspace packages came along');

    step('npx herald --version');
    assert.equal(run('npx', ['herald', '--version'], app, env), `herald ${manifest.version}\n`);

    const [api, query, consolePort, pg] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    step(`npx herald start (api ${String(api)}, query ${String(query)}, console ${String(consolePort)})`);
    const child = spawn('npx', ['herald', 'start'], {
      cwd: app,
      env: {
        ...env,
        API_PORT: String(api),
        QUERY_PORT: String(query),
        CONSOLE_PORT: String(consolePort),
        EMBEDDED_PG_PORT: String(pg),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npx = child;
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    );
    // npx runs Herald under `sh -c` and does not pass SIGTERM on to it: Herald's own pid (in
    // its log lines) is the one to signal, as a process manager would.
    const herald = await waitFor(
      'herald started',
      () => {
        if (child.exitCode !== null) throw new Error(`npx herald start exited:\n${output}`);
        const line = output.split('\n').find((l) => l.includes('"msg":"herald started"'));
        const key = /Development API key \(service "dev"\): (\S+)/.exec(output)?.[1];
        return line === undefined || key === undefined
          ? undefined
          : { pid: (JSON.parse(line) as { pid: number }).pid, key };
      },
      120_000,
    ).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`);
    });
    heraldPid = herald.pid;
    assert.ok(existsSync(join(app, 'data', 'pg', 'PG_VERSION')), 'PostgreSQL keeps its files in ./data');
    assert.equal(readFileSync(join(app, 'data', 'dev-api-key'), 'utf8').trim(), herald.key);
    assert.equal(
      existsSync(join(app, 'node_modules', 'herald', 'data')),
      false,
      'nothing written in node_modules',
    );

    step('health, pages and assets');
    await expectStatus(`http://127.0.0.1:${String(api)}/healthz`, 200);
    await expectStatus(`http://127.0.0.1:${String(api)}/readyz`, 200);
    await expectStatus(`http://127.0.0.1:${String(query)}/inbox`, 200);
    await expectStatus(`http://127.0.0.1:${String(query)}/inbox/herald-inbox.js`, 200);
    await expectStatus(`http://127.0.0.1:${String(consolePort)}/login`, 200);
    await expectStatus(`http://127.0.0.1:${String(consolePort)}/assets/console.css`, 200);

    step('send one notification with the development API key');
    const headers = { authorization: `Bearer ${herald.key}`, 'content-type': 'application/json' };
    const accepted = (await expectStatus(`http://127.0.0.1:${String(api)}/v1/notifications`, 202, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        recipients: ['alice'],
        channels: ['in_app'],
        content: { default: { title: 'Hello', body: 'From the packed Herald' } },
      }),
    })) as { id: string };
    const url = `http://127.0.0.1:${String(api)}/v1/notifications/${encodeURIComponent(accepted.id)}`;
    await waitFor('the notification completed', async () => {
      const body = (await expectStatus(url, 200, { headers })) as { status: string };
      return body.status === 'completed';
    });

    step(`SIGTERM to herald (pid ${String(herald.pid)})`);
    process.kill(herald.pid, 'SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running after 60 s'), 60_000)),
    ]);
    assert.equal(code, 0, `npx herald start exited with ${String(code)}:\n${output}`);
    assert.match(output, /"msg":"stopped"/);
    assert.equal(existsSync(join(app, 'data', 'pg', 'postmaster.pid')), false, 'PostgreSQL stopped');
    assert.equal(existsSync(join(app, 'data', 'herald.lock')), false, 'the data directory lock released');
    step('ok: packed, installed, started, sent, stopped');
  } finally {
    if (npx !== undefined && npx.exitCode === null && npx.signalCode === null) {
      if (heraldPid !== undefined) {
        try {
          process.kill(heraldPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      npx.kill('SIGKILL');
    }
    await stopOrphanedPostgres(join(app, 'data', 'pg'));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `test:pack FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
