// Runs Herald roles as real child processes (for crash and shutdown tests). Only processes
// started here are ever signalled, by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/db/package-root.js';
import type { Pool } from '../../src/db/pools.js';
import { loopbackNetworks } from './loopback-allowed.js';
import { waitFor } from './wait-for.js';

export interface HeraldProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export function spawnHerald(args: string[], env: Record<string, string>): HeraldProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/main.ts'), ...args], {
    cwd: packageRoot,
    // The stand-ins listen on loopback, which the outbound policy refuses unless allowed.
    env: { ...process.env, LOG_LEVEL: 'warn', OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    output: () => output,
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

async function listening(pool: Pool): Promise<number> {
  const r = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'herald-listen'",
  );
  return r.rows[0]?.n ?? 0;
}

/**
 * Starts `count` worker processes on the database of `pool` (`env` names it in DATABASE_URL) and
 * waits until each listens for work; a worker that fails to start fails with its output.
 */
export async function startWorkerProcesses(
  pool: Pool,
  count: number,
  env: Record<string, string>,
): Promise<HeraldProcess[]> {
  const base = await listening(pool);
  const started = Array.from({ length: count }, () => spawnHerald(['worker'], env));
  await waitFor('workers to start', async () => (await listening(pool)) >= base + count, 60_000).catch(
    (error: unknown) => {
      for (const w of started) w.kill('SIGKILL');
      throw new Error(`${String(error)}; workers said: ${started.map((w) => w.output()).join('\n')}`);
    },
  );
  return started;
}
