// Workers killed with -9 at random while deliveries flow, each replaced by a new one. The
// scenario runs with the default 60 s lease: a killed worker's deliveries come back when its
// database session ends (docs/decisions/0011-session-leases.md), and the report says how soon
// after each kill the deliveries it held were sent again (at most 10 s, or the scenario fails).
import { FaultHarness, sleep } from './harness.js';
import type { Scenario } from './scenarios.js';

/** A killed worker's deliveries in flight (leased under its session's owner) and when it died. */
interface Kill {
  at: number;
  inFlight: string[];
}

/** The deliveries the worker with OS pid `pid` holds in `sending` (docs/decisions/0011). */
async function inFlightOf(h: FaultHarness, pid: number | undefined): Promise<string[]> {
  const r = await h.db.query<{ id: string }>(
    `SELECT d.id FROM deliveries d JOIN worker_sessions w ON w.owner = d.lease_owner
      WHERE d.state = 'sending' AND w.pid = $1`,
    [pid],
  );
  return r.rows.map((x) => x.id);
}

/**
 * How long after its kill each in-flight delivery reached the receiver again: the latest of
 * those sent again (one whose outcome was recorded before the kill is not sent again).
 */
function resentAfterKill(h: FaultHarness, kills: readonly Kill[]): { resent: number; maxSeconds: number } {
  let resent = 0;
  let maxMs = 0;
  for (const kill of kills) {
    const ids = new Set(kill.inFlight);
    const first = new Map<string, number>();
    for (const e of h.receiver.accepted)
      if (ids.has(e.deliveryId) && e.start >= kill.at)
        first.set(e.deliveryId, Math.min(first.get(e.deliveryId) ?? Infinity, e.start));
    resent += first.size;
    for (const start of first.values()) maxMs = Math.max(maxMs, start - kill.at);
  }
  return { resent, maxSeconds: Math.round(maxMs / 100) / 10 };
}

/**
 * kill -9 of worker processes at random while deliveries flow; a replacement starts each time.
 * With the default 60 s lease: a killed worker's deliveries come back when its database session
 * ends, and the report says how soon they were sent again.
 */
export const workerKills: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('worker-kills', seed, 20);
  const started = Date.now();
  try {
    await h.setup({ LEASE_SECONDS: '60' });
    await h.spawn(['api', 'scheduler']);
    const workers = [await h.spawn(['worker']), await h.spawn(['worker']), await h.spawn(['worker'])];
    const requests = smoke ? 50 : 500;
    const kills = smoke ? 2 : 6;
    const progress = { done: false };
    const sending = h
      .send({ requests, recipientsPerRequest: 100, concurrency: 4, lane: 'bulk' })
      .finally(() => (progress.done = true));
    let killed = 0;
    const schedule: string[] = [];
    const killTimes: Kill[] = [];
    while (killed < kills) {
      await sleep(1000 + Math.floor(h.random() * 2000));
      const victim = Math.floor(h.random() * workers.length);
      const process = workers[victim];
      if (process === undefined) continue;
      schedule.push(`${String(Math.round((Date.now() - started) / 100) / 10)}s:w${String(victim)}`);
      const inFlight = await inFlightOf(h, process.child.pid);
      await h.kill(process);
      killTimes.push({ at: Date.now(), inFlight });
      workers[victim] = await h.spawn(['worker']);
      killed += 1;
      if (progress.done && killed >= 2) {
        const open = await h.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM deliveries WHERE state IN ('pending','retrying','sending')",
        );
        if ((open.rows[0]?.n ?? 0) === 0) break;
      }
    }
    await sending;
    await h.quiesce();
    const { resent, maxSeconds } = resentAfterKill(h, killTimes);
    const held = killTimes.reduce((n, k) => n + k.inFlight.length, 0);
    const figures = await h.check(
      requests,
      100,
      `${String(killed)} worker kill -9 (${schedule.join(' ')}); ${String(held)} deliveries in flight`,
      `sessions end with the process (60 s lease); ${String(resent)} resent after kill: max ${String(maxSeconds)} s`,
      started,
    );
    const extraFailures =
      maxSeconds < 10 ? [] : [`resent after kill: max ${String(maxSeconds)} s (limit 10 s)`];
    return { ...figures, extraFailures };
  } finally {
    await h.teardown();
  }
};
