// The value every provider's send() resolves to (STYLE: outcomes are values).

export type DeliveryOutcome =
  | { kind: 'sent'; providerMessageId: string | null }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'target_invalid'; reason: string }
  | { kind: 'failed'; reason: string };

export type OutcomeKind = DeliveryOutcome['kind'];
