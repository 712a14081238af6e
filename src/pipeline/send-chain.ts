// Sends one rendered message through its provider chain: the primary, then each fallback while
// the one before answered `retry` or `config_error`, threw, or was held back by the provider
// guard (circuit open, rate limit, bulkhead). Each call is admitted by the guard and its answer
// recorded there; an exception is kept as a result, never thrown on. Each call continues the
// notification's trace: a `traceparent` with a span id of its own (and, when tracing is on, a
// client span), and its log lines carry the trace id.
import type { Logger } from 'pino';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import type { CallResult } from '../domain/outcome-policy.js';
import { formatTraceparent } from '../domain/trace-context.js';
import type { Metrics } from '../observability/metrics.js';
import { newSpanId, type Tracer } from '../observability/tracing.js';
import { guardKey, type ProviderGuard } from './provider-guard.js';

export interface SendChainDeps {
  guard: ProviderGuard;
  metrics: Metrics;
  logger: Logger;
  /** Set when tracing is on: a client span per provider call. */
  tracer?: Tracer | undefined;
}

/** The trace a delivery's provider calls continue (ClaimedDelivery.trace). */
export interface DeliveryTrace {
  traceId: string;
  /** The span the calls are children of; null: none was kept (a new id stands in). */
  spanId: string | null;
  sampled: boolean;
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
  trace?: DeliveryTrace,
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
    const result = await call(deps, provider, key, message, signal, trace);
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
  trace: DeliveryTrace | undefined,
): Promise<Answer> {
  const span = callSpan(deps, provider, message, trace);
  const traced = span === undefined ? {} : { trace_id: span.traceId, span_id: span.spanId };
  const started = performance.now();
  let result: Answer;
  try {
    result = await provider.send(
      span === undefined ? message : { ...message, traceparent: span.traceparent },
      signal,
    );
  } catch (error) {
    // An exception is a bug or an unknown answer: retried, with the evidence kept.
    deps.logger.warn(
      { err: error, deliveryId: message.deliveryId, provider: provider.name, ...traced },
      'provider threw',
    );
    result = { kind: 'threw', message: error instanceof Error ? error.message : 'unknown' };
  }
  const elapsedMs = performance.now() - started;
  span?.end(result);
  if (deps.logger.isLevelEnabled('debug'))
    deps.logger.debug(
      {
        deliveryId: message.deliveryId,
        attempt: message.attempt,
        provider: provider.name,
        outcome: result.kind,
        ms: Math.round(elapsedMs),
        ...traced,
      },
      'provider call',
    );
  deps.metrics.providerSendSeconds.observe(
    { channel: message.channel, provider: provider.name },
    elapsedMs / 1000,
  );
  deps.guard.record(key, signal.aborted ? 'aborted' : result, elapsedMs);
  if (result.kind === 'config_error') {
    deps.logger.error(
      { provider: provider.name, reason: result.reason, ...traced },
      'provider configuration error: circuit opened',
    );
  }
  return result;
}

/**
 * One provider call's place in the delivery's trace: its span id (the tracer's span, else a new
 * id that no recorded span has) and the `traceparent` the provider gets.
 */
function callSpan(
  deps: SendChainDeps,
  provider: ChannelProvider,
  message: RenderedMessage,
  trace: DeliveryTrace | undefined,
): { traceId: string; spanId: string; traceparent: string; end(result: Answer): void } | undefined {
  if (trace === undefined) return undefined;
  const parent = { traceId: trace.traceId, parentId: trace.spanId ?? newSpanId(), sampled: trace.sampled };
  const span = deps.tracer?.startSpan(`send ${provider.name}`, 'client', parent, {
    'herald.delivery_id': message.deliveryId,
    'herald.notification_id': message.notificationId,
    'herald.channel': message.channel,
    'herald.provider': provider.name,
    'herald.attempt': message.attempt,
  });
  const spanId = span?.spanId ?? newSpanId();
  return {
    traceId: trace.traceId,
    spanId,
    traceparent: formatTraceparent(trace.traceId, spanId, span?.sampled ?? trace.sampled),
    end(result) {
      span?.end({
        attributes: { 'herald.outcome': result.kind },
        error: result.kind === 'sent' ? undefined : result.kind,
      });
    },
  };
}
