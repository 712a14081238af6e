// CPU time of processes as /proc reports it (Linux): what a benchmark spends per item, which
// holds from machine to machine far better than a rate on shared cores.
import { readFileSync } from 'node:fs';
import type { Pool } from '../src/db/pools.js';

/** Linux reports CPU times in /proc in clock ticks of 1/100 s (USER_HZ). */
const ticksPerSecond = 100;

/** CPU seconds (user + system) /proc/<pid>/stat reports for a process, with its waited-for children if asked. */
export function cpuSeconds(pid: number, withChildren = false): number {
  // Fields after the command name, which is in parentheses and may contain spaces.
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  const ticks = field(14) + field(15) + (withChildren ? field(16) + field(17) : 0);
  return ticks / ticksPerSecond;
}

/**
 * All of PostgreSQL's CPU so far, when it runs on this machine: the postmaster with the
 * backends that have exited, plus the live ones. Undefined when /proc does not show it.
 * (Every database of the server counts: run nothing else on it meanwhile.)
 */
export async function postgresCpuSeconds(pool: Pool): Promise<number | undefined> {
  try {
    const backend = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    const stat = readFileSync(`/proc/${String(backend)}/stat`, 'utf8');
    const postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const children = readFileSync(`/proc/${String(postmaster)}/task/${String(postmaster)}/children`, 'utf8')
      .trim()
      .split(' ')
      .filter((p) => p !== '')
      .map(Number);
    let total = cpuSeconds(postmaster, true);
    for (const child of children) {
      try {
        total += cpuSeconds(child);
      } catch {
        // exited meanwhile: its time is in the postmaster's children's total from now on
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has spent busy since boot, from /proc/stat. */
export function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const t = cpu.trim().split(/\s+/).slice(1).map(Number);
  // user, nice, system, irq, softirq (guest time is already in user and nice; idle, iowait and
  // steal are not this machine's work).
  const busy = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (t[i] ?? 0), 0);
  return busy / ticksPerSecond;
}
