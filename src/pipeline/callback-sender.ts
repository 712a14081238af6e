// The status callback sender (docs/callbacks.md), in the worker role: claims due callback
// messages (claimCallbacks: FOR UPDATE SKIP LOCKED, in notification order), POSTs each as JSON
// signed the Standard Webhooks way, and records each result as it comes. Up to `concurrency`
// POSTs run at once; a slow receiver holds one slot for at most `timeoutMs`. Woken by
// NOTIFY herald_callbacks (sent by the triggers at commit) with a poll fallback.
// Every connection passes the outbound policy (../channels/outbound-connector.ts), so a name that
// resolves to a private address is refused on the connection that would use it.
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import type { WakeListener } from '../db/wake-listener.js';
import { wakeChannels } from '../db/wake-notifier.js';
import {
  claimCallbacks,
  finishCallbacks,
  type ClaimedCallback,
  type CallbackFinish,
} from '../db/stores/callback-store.js';
import { decideCallback, type CallbackAttempt, type CallbackRetryPolicy } from '../domain/callbacks.js';
import type { OutboundPolicy } from '../domain/outbound-policy.js';
import { backoffMs, parseRetryAfter } from '../domain/retry-policy.js';
import { outboundConnector, type OutboundLookup } from '../channels/outbound-connector.js';
import { networkReason } from '../channels/network-reason.js';
import type { Metrics } from '../observability/metrics.js';

/** The signature headers of one request (Standard Webhooks), one signature per secret. */
export type CallbackSigner = (
  secrets: readonly string[],
  messageId: string,
  body: string,
  unixSeconds: number,
) => Record<string, string>;

export interface CallbackSenderOptions {
  pool: Pool;
  listener: WakeListener;
  metrics: Metrics;
  logger: Logger;
  outbound: OutboundPolicy;
  sign: CallbackSigner;
  /** POSTs in flight at most. */
  concurrency: number;
  /** The whole POST, connection to the end of the answer. */
  timeoutMs: number;
  /** A claimed message is due again after this long if its sender vanished. */
  leaseMs: number;
  pollIntervalMs: number;
  retry: CallbackRetryPolicy;
  random: () => number;
  now: () => Date;
  /** Replaces DNS (tests). */
  lookup?: OutboundLookup;
}

/** Bytes of a receiver's answer read at most; past that the connection is dropped. */
export const maxCallbackResponseBytes = 16_384;

export class CallbackSender {
  private readonly agent: Agent;
  private readonly abort = new AbortController();
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private failures = 0;

  constructor(private readonly options: CallbackSenderOptions) {
    this.agent = new Agent({
      connect: outboundConnector(options.outbound, {
        timeout: options.timeoutMs,
        ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
      }),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  start(): void {
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    const { listener, pollIntervalMs } = this.options;
    while (!this.stopped) {
      const free = this.options.concurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race(this.inFlight);
        continue;
      }
      let claimed: ClaimedCallback[];
      try {
        claimed = await claimCallbacks(this.options.pool, free, this.options.leaseMs);
        this.failures = 0;
      } catch (error) {
        if (this.isStopped()) return;
        this.failures += 1;
        this.options.logger.warn({ err: error }, 'claiming status callbacks failed');
        await sleep(backoffMs(this.failures, { baseMs: 100, maxMs: 5_000 }));
        continue;
      }
      for (const message of claimed) this.track(this.deliver(message));
      // Nothing due: wait for a hint, the poll, or a finished POST (which may unblock the next
      // message of its notification).
      if (claimed.length === 0) {
        await Promise.race([listener.wait(wakeChannels.callbacks, pollIntervalMs), ...this.inFlight]);
      }
    }
  }

  /** Read through a method: stop() changes it while the loop awaits. */
  private isStopped(): boolean {
    return this.stopped;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => {
      this.inFlight.delete(work);
      // Let the loop claim what this message may have been holding back.
      this.options.listener.wake(wakeChannels.callbacks);
    });
  }

  private async deliver(message: ClaimedCallback): Promise<void> {
    const result = await this.post(message);
    if (this.stopped && result.kind !== 'delivered') return; // due again once its lease ends
    const { metrics, retry, random, now } = this.options;
    metrics.callbackAttempts.inc({ result: result.kind === 'delivered' ? 'sent' : 'failed' });
    const ageMs = now().getTime() - message.firstTryAt.getTime();
    const decision = decideCallback(result, message.attempt, ageMs, retry, random);
    if (decision.kind === 'dead') metrics.callbacksDead.inc();
    const finish: CallbackFinish = { ...decision, id: message.id, attempt: message.attempt };
    try {
      await finishCallbacks(this.options.pool, [finish]);
    } catch (error) {
      // Left as claimed: due again when its lease ends (at least once).
      this.options.logger.warn({ err: error, callback: message.id }, 'recording a status callback failed');
    }
  }

  /** One POST. Only a classified word is kept of a failure (never a peer's bytes or addresses). */
  private async post(message: ClaimedCallback): Promise<CallbackAttempt> {
    const { type, occurred_at: occurredAt, ...data } = message.payload;
    const body = JSON.stringify({ type, timestamp: occurredAt, data });
    const nowMs = this.options.now().getTime();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Herald-Callbacks/1',
      ...this.options.sign(message.secrets, message.id, body, Math.floor(nowMs / 1000)),
    };
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      const response = await request(message.url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal,
      });
      // Only the status matters; a long answer is cut off (and its connection dropped).
      await response.body.dump({ limit: maxCallbackResponseBytes });
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { kind: 'delivered' };
      const header = response.headers['retry-after'];
      const retryAfterMs = parseRetryAfter(
        typeof header === 'string' ? header : (header?.[0] ?? null),
        this.options.now().getTime(),
      );
      return {
        kind: 'retry',
        reason: `HTTP ${String(status)}`,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    } catch (error) {
      const reason = signal.aborted && !this.abort.signal.aborted ? 'timeout' : networkReason(error);
      return reason === 'blocked' ? { kind: 'give_up', reason } : { kind: 'retry', reason };
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.options.listener.wake(wakeChannels.callbacks);
    this.abort.abort();
    await this.running;
    await Promise.allSettled([...this.inFlight]);
    await this.agent.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
