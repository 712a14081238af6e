// Workflow runs (docs/workflows.md), in the worker role: each tick claims due runs with
// FOR UPDATE SKIP LOCKED and moves each forward in one transaction with its effects (releasing
// its recipient to the fan-out stage, joining a digest), then closes due digests the same way.
// Nothing waits in memory: a killed worker leaves every run at its last committed step, and the
// next tick of any worker picks it up.
import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  claimDueRuns,
  type ClaimedRun,
  closeDueDigests,
  deleteFinishedWorkflows,
  joinDigest,
  loadSendOutcomes,
  runKey,
  releaseRecipient,
  writeRunResult,
} from '../db/stores/workflow-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { advanceRun, type Effect } from '../domain/workflow.js';
import type { Metrics } from '../observability/metrics.js';

export interface WorkflowStageDeps {
  pool: Pool;
  notifier: WakeNotifier;
  metrics: Metrics;
  logger: Logger;
  batchSize: number;
  now: () => Date;
}

/** Finished runs and sent digests are kept this long, then deleted. */
export const finishedWorkflowKeepMs = 7 * 86_400_000;

/**
 * One tick: delete a batch of long-finished runs and digests, then advance due runs and close
 * due digests, batch by batch, until none are due.
 */
export async function runWorkflowTick(deps: WorkflowStageDeps): Promise<void> {
  for (let round = 0; round < 100; round += 1) {
    const runs = await advanceDueRuns(deps);
    const digests = await withTransaction(deps.pool, (client) =>
      closeDueDigests(client, deps.batchSize, deps.now()),
    );
    if (digests > 0) deps.metrics.workflowDigests.inc(digests);
    if (runs + digests > 0) deps.notifier.notify(wakeChannels.fanOut);
    if (runs < deps.batchSize && digests < deps.batchSize) return;
  }
}

/**
 * Deletes runs and digests finished over a week ago, a batch per transaction until none is left
 * (hourly: nothing reads them once done, and they would otherwise grow without bound).
 */
export async function cleanUpFinishedWorkflows(
  deps: Pick<WorkflowStageDeps, 'pool' | 'now' | 'batchSize'>,
): Promise<void> {
  const before = new Date(deps.now().getTime() - finishedWorkflowKeepMs);
  for (;;) {
    const deleted = await withTransaction(deps.pool, (client) =>
      deleteFinishedWorkflows(client, before, deps.batchSize),
    );
    if (deleted < deps.batchSize) return;
  }
}

async function advanceDueRuns(deps: WorkflowStageDeps): Promise<number> {
  return withTransaction(deps.pool, async (client) => {
    const runs = await claimDueRuns(client, deps.batchSize);
    const outcomes = await loadSendOutcomes(client, runs);
    const joins: { run: ClaimedRun; digest: Extract<Effect, { kind: 'digest' }> }[] = [];
    for (const run of runs) {
      const result = advanceRun(run, {
        now: deps.now(),
        timeZone: run.timeZone,
        attributes: run.attributes,
        version: run.version,
        outcome: run.sent ? (outcomes.get(runKey(run)) ?? 'pending') : null,
      });
      for (const effect of result.effects) {
        if (effect.kind === 'send') await releaseRecipient(client, run, effect.channels);
        else joins.push({ run, digest: effect });
      }
      await writeRunResult(client, run, result);
      deps.metrics.workflowSteps.inc({ state: result.state });
    }
    // Digest rows are locked in one order by every worker, so two batches never deadlock.
    joins.sort((a, b) => compareKeys(digestOrder(a), digestOrder(b)));
    for (const { run, digest } of joins) await joinDigest(client, run, digest);
    return runs.length;
  });
}

function digestOrder(join: { run: ClaimedRun; digest: { key: string } }): string[] {
  return [join.run.userId, String(join.run.serviceId), join.digest.key, join.run.notificationId];
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i += 1) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
