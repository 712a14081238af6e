// Workflows killed mid-delay: every notification waits 4 s in a delay step; both worker
// processes are killed with -9 while every run is waiting, and replacements start after the
// delay ran out. Each run must resume where it was: every recipient sent exactly once, none
// before its delay ended, and every run done. The checker's count (the receiver's ledger
// against the deliveries) is independent of the workflow tables.
import { FaultHarness, sleep } from './harness.js';
import type { Scenario } from './scenarios.js';

const delayMs = 4000;

export const workflowDelayKill: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('workflow-delay-kill', seed);
  const started = Date.now();
  try {
    await h.setup();
    await h.spawn(['api', 'scheduler']);
    const workers = [await h.spawn(['worker']), await h.spawn(['worker'])];
    const requests = smoke ? 20 : 100;
    const perRequest = 10;
    await h.send({
      requests,
      recipientsPerRequest: perRequest,
      concurrency: 4,
      steps: [{ type: 'delay', for: `${String(delayMs / 1000)}s` }],
    });
    const total = requests * perRequest;
    // Every run has begun its delay (its wait is a row) before the kill.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await h.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM workflow_runs WHERE state = 'running' AND phase = 'waiting'",
      );
      if (r.rows[0]?.n === total) break;
      if (Date.now() > deadline)
        throw new Error(`only ${String(r.rows[0]?.n)} of ${String(total)} runs waiting`);
      await sleep(100);
    }
    for (const w of workers) await h.kill(w);
    const extraFailures: string[] = [];
    const early = h.receiver.counts().size;
    if (early > 0) extraFailures.push(`${String(early)} sends arrived before their delay ended`);
    await sleep(delayMs);
    await h.spawn(['worker']);
    await h.spawn(['worker']);
    const done = Date.now() + 60_000;
    for (;;) {
      const r = await h.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM workflow_runs WHERE state = 'running'",
      );
      if (r.rows[0]?.n === 0) break;
      if (Date.now() > done) {
        extraFailures.push(`${String(r.rows[0]?.n)} workflow runs never finished`);
        break;
      }
      await sleep(200);
    }
    await h.quiesce();
    const tooEarly = await h.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries d JOIN notifications n
           ON n.id = d.notification_id AND n.created_at = d.notification_created_at
        WHERE d.created_at < n.created_at + $1 * interval '1 millisecond'`,
      [delayMs],
    );
    if ((tooEarly.rows[0]?.n ?? 0) > 0)
      extraFailures.push(`${String(tooEarly.rows[0]?.n)} deliveries were made before their delay ended`);
    const figures = await h.check(
      requests,
      perRequest,
      `2 worker kill -9 while ${String(total)} runs waited in a ${String(delayMs)} ms delay`,
      'runs resume from their rows',
      started,
    );
    return { ...figures, extraFailures };
  } finally {
    await h.teardown();
  }
};
