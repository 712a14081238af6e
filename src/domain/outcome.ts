// The value every provider's send() resolves to (outcomes are values, not
// exceptions: every answer a provider can give is one of these kinds).

export type DeliveryOutcome =
  | { kind: 'sent'; providerMessageId: string | null }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'target_invalid'; reason: string }
  | { kind: 'failed'; reason: string }
  /**
   * Our side is misconfigured at this provider (bad credentials, unverified sender, suspended
   * account): retrying cannot help until an operator acts. The provider's circuit opens and the
   * delivery waits without spending its attempt (docs/providers/README.md).
   */
  | { kind: 'config_error'; reason: string };

export type OutcomeKind = DeliveryOutcome['kind'];
