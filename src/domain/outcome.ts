// The value every provider's send() resolves to (STYLE: outcomes are values).

export type DeliveryOutcome =
  | { kind: 'sent'; providerMessageId: string | null }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'target_invalid'; reason: string }
  | { kind: 'failed'; reason: string }
  /**
   * Our side is misconfigured at this provider (bad credentials, unverified sender, suspended
   * account): retrying cannot help until an operator acts. The provider's circuit opens and the
   * delivery waits without spending its attempt (PROVIDERS.md: config-error).
   */
  | { kind: 'config_error'; reason: string };

export type OutcomeKind = DeliveryOutcome['kind'];
