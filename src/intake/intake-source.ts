// What every broker's source does with the processor's outcomes, and what they share: the
// dead-letter headers that carry a refused message's problem, the count kept per outcome, and
// the wait between reconnects.
import type { Logger } from '../observability/logger.js';
import type { Broker, IntakeOutcome, IntakeProblem, IntakeProcessor } from './intake-processor.js';

export interface IntakeSource {
  readonly broker: Broker;
  /** Connects, declares its queues (streams) and consumes until `stop`; reconnects by itself. */
  start(): Promise<void>;
  /** Stops consuming, settles or releases what it holds, and disconnects. */
  stop(): Promise<void>;
}

/** How a message ended, as counted in herald_intake_messages_total{outcome}. */
export type IntakeCount = 'accepted' | 'replayed' | 'dead_lettered' | 'released';

export interface SourceOptions {
  services: readonly string[];
  /** Messages held unacknowledged at once (INTAKE_PREFETCH). */
  prefetch: number;
  processor: IntakeProcessor;
  logger: Logger;
  count: (service: string, outcome: IntakeCount) => void;
}

export function countOf(outcome: IntakeOutcome): IntakeCount {
  if (outcome.kind === 'accepted') return outcome.replayed ? 'replayed' : 'accepted';
  return outcome.kind === 'invalid' ? 'dead_lettered' : 'released';
}

/** Longest problem detail carried in a header (the message body is kept whole). */
const maxDetail = 1000;

/**
 * The headers a dead-lettered message carries: the problem's code, status and detail as an
 * HTTP caller would read them in problem+json, and the wrong fields as JSON.
 */
export function problemHeaders(problem: IntakeProblem): Record<string, string> {
  return {
    'herald-problem-code': problem.code,
    'herald-problem-status': String(problem.status),
    'herald-problem-detail': problem.detail.slice(0, maxDetail),
    ...(problem.errors === undefined || problem.errors.length === 0
      ? {}
      : { 'herald-problem-errors': JSON.stringify(problem.errors).slice(0, maxDetail) }),
  };
}

/** Waits before reconnect attempt `attempt` (0, 1, …): 250 ms doubling to 5 s. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(250 * 2 ** attempt, 5000);
}

/** Waits `ms`, or less if `signal` aborts first; never keeps the process alive by itself. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Waits at most 5 s for a source's first connection: a broker that is down when Herald starts
 * is reached later (the source keeps trying), and the process's other roles start meanwhile.
 */
export async function waitBrieflyFor(
  connected: Promise<unknown>,
  logger: Logger,
  broker: string,
): Promise<void> {
  const waited = await Promise.race([connected.then(() => true), sleep(5000).then(() => false)]);
  if (!waited) logger.warn(`intake: ${broker} not reachable yet, still trying`);
}
