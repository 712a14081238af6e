// Sends one rendered message through its provider chain: the primary, then each fallback while
// the one before answered `retry` or `config_error`, threw, or was held back by the provider
// guard (circuit open, rate limit, bulkhead). Each call is admitted by the guard and its answer
// recorded there; an exception is kept as a result, never thrown on.
import type { Logger } from 'pino';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import type { CallResult } from '../domain/outcome-policy.js';
import type { Metrics } from '../observability/metrics.js';
import { guardKey, type ProviderGuard } from './provider-guard.js';

export interface SendChainDeps {
  guard: ProviderGuard;
  metrics: Metrics;
  logger: Logger;
}

/** What sending produced, and the provider that produced it (null: no provider call was made). */
export interface Sent {
  result: CallResult;
  provider: string | null;
}

type Deferred = Extract<CallResult, { kind: 'deferred' }>;
/** What a call that was made produced. */
type Answer = Exclude<CallResult, Deferred>;

export async function sendThroughChain(
  deps: SendChainDeps,
  message: RenderedMessage,
  chain: readonly ChannelProvider[],
  signal: AbortSignal,
): Promise<Sent> {
  const channel = message.channel;
  let held: Deferred | undefined;
  let last: Sent | undefined;
  // The provider that failed or held the call back before this one, for the fallback count.
  let previous: string | undefined;
  for (const provider of chain) {
    if (last !== undefined && signal.aborted) break;
    const key = guardKey(provider.name, channel, message.target);
    const admission = await deps.guard.acquire(key, signal);
    if (!admission.ok) {
      if (held === undefined || admission.delayMs < held.delayMs)
        held = { kind: 'deferred', reason: admission.reason, delayMs: admission.delayMs };
      previous = provider.name;
      continue;
    }
    if (previous !== undefined) deps.metrics.providerFallbacks.inc({ from: previous, to: provider.name });
    const result = await call(deps, provider, key, message, signal);
    if (result.kind !== 'retry' && result.kind !== 'threw' && result.kind !== 'config_error')
      return { result, provider: provider.name };
    last = { result, provider: provider.name };
    previous = provider.name;
  }
  if (last !== undefined) return last;
  // Every provider held the call back: requeue without an attempt.
  const deferred = held ?? { kind: 'deferred', reason: 'circuit_open', delayMs: deps.guard.openMs };
  deps.metrics.deliveriesDeferred.inc({ channel, reason: deferred.reason });
  return { result: deferred, provider: null };
}

async function call(
  deps: SendChainDeps,
  provider: ChannelProvider,
  key: string,
  message: RenderedMessage,
  signal: AbortSignal,
): Promise<Answer> {
  const started = performance.now();
  let result: Answer;
  try {
    result = await provider.send(message, signal);
  } catch (error) {
    // An exception is a bug or an unknown answer: retried, with the evidence kept.
    deps.logger.warn(
      { err: error, deliveryId: message.deliveryId, provider: provider.name },
      'provider threw',
    );
    result = { kind: 'threw', message: error instanceof Error ? error.message : 'unknown' };
  }
  const elapsedMs = performance.now() - started;
  deps.metrics.providerSendSeconds.observe(
    { channel: message.channel, provider: provider.name },
    elapsedMs / 1000,
  );
  deps.guard.record(key, signal.aborted ? 'aborted' : result, elapsedMs);
  if (result.kind === 'config_error') {
    deps.logger.error(
      { provider: provider.name, reason: result.reason },
      'provider configuration error: circuit opened',
    );
  }
  return result;
}
