// W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing an incoming `traceparent`,
// formatting the one each provider call carries, and the trace a notification is delivered in.
// Pure: ids are made by the caller from its own randomness.

export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** The span this context continues from (the caller's span): 16 hex digits, not all zero. */
  parentId: string;
  sampled: boolean;
}

/** The trace a notification is delivered in: kept with it from the accepting request. */
export interface NotificationTrace {
  traceId: string;
  /**
   * The span its delivery attempts continue from: Herald's span of the accepting request when
   * tracing is on, else the caller's span, else a new id (no recorded span has it).
   */
  spanId: string;
  /** The W3C trace-flags byte; bit 0 is `sampled`. */
  flags: number;
}

// The whole header must be exactly this (55 characters): a longer value, another version, upper
// case or a missing field is refused, never trimmed or repaired, so nothing a caller sent beyond
// a well-formed trace id and flags travels further (§3.2.2: version ff is invalid, and a
// receiver of version 00 must not accept trailing data).
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const allZero = /^0+$/;

/** A `traceparent` header of version 00, or undefined when it is not exactly one. */
export function parseTraceparent(header: string | string[] | undefined): TraceContext | undefined {
  if (typeof header !== 'string') return undefined;
  const match = traceparentPattern.exec(header.trim());
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined) return undefined;
  // All-zero ids are invalid by the specification.
  if (allZero.test(match[1]) || allZero.test(match[2])) return undefined;
  return { traceId: match[1], parentId: match[2], sampled: (parseInt(match[3], 16) & 1) === 1 };
}

/** True for a trace id (32 lower-case hex, not all zero) or span id (16) as W3C allows them. */
export function isTraceId(text: string): boolean {
  return /^[0-9a-f]{32}$/.test(text) && !allZero.test(text);
}

export function isSpanId(text: string): boolean {
  return /^[0-9a-f]{16}$/.test(text) && !allZero.test(text);
}

/** The `traceparent` value of a call made by the span `spanId` of a trace (version 00). */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * The trace a new notification is delivered in: the accepting request's context, when it has one
 * (a valid incoming `traceparent`, or Herald's own span of the request), else `fresh`: a new
 * trace id, unsampled (nothing recorded it). Only the sampled bit is kept: the other flag bits
 * are not defined for version 00.
 */
export function notificationTraceFor(
  context: TraceContext | undefined,
  fresh: () => { traceId: string; spanId: string },
): NotificationTrace {
  if (context === undefined || !isTraceId(context.traceId) || !isSpanId(context.parentId))
    return { ...fresh(), flags: 0 };
  return { traceId: context.traceId, spanId: context.parentId, flags: context.sampled ? 1 : 0 };
}

/**
 * The trace of a stored notification, as its delivery attempts continue it. Rows accepted before trace ids were kept have none: their
 * UUID (128 bits, unique, never all zero for a v4/v7 id) stands in, so every attempt of such a
 * delivery still shares one trace id.
 */
export function storedTrace(
  stored: { traceId: string | null; spanId: string | null; flags: number | null },
  notificationId: string,
): { traceId: string; spanId: string | null; sampled: boolean } | undefined {
  const { traceId, spanId, flags } = stored;
  const parent = spanId !== null && isSpanId(spanId) ? spanId : null;
  if (traceId !== null && isTraceId(traceId))
    return { traceId, spanId: parent, sampled: ((flags ?? 0) & 1) === 1 };
  const fromId = notificationId
    .slice(notificationId.indexOf('#') + 1)
    .replaceAll('-', '')
    .toLowerCase();
  return isTraceId(fromId) ? { traceId: fromId, spanId: null, sampled: false } : undefined;
}
