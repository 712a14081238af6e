// Runs Herald roles as real child processes (for crash and shutdown tests). Only processes
// started here are ever signalled, by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/db/package-root.js';
import { loopbackNetworks } from './loopback-allowed.js';

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
