// Delivery states and the transitions between them. docs/delivery-states.md draws the same machine.

export const deliveryStates = [
  'pending', // waiting to be claimed (run_at may lie in the future)
  'retrying', // an attempt failed in a retryable way; claimable again at run_at
  'sending', // claimed by a worker under a lease
  'sent', // accepted by the provider
  'delivered', // reached its destination (in-app inbox, or the provider's receipt says so)
  'failed', // permanent failure answered by the provider
  'target_invalid', // the device token or address is invalid; the target was disabled
  'dead', // out of attempts; listed in dead letters and replayable
  'canceled', // canceled by the caller before it was sent
  'bounced', // the provider reported it undeliverable after accepting it (email bounce)
  'suppressed', // not sent: a preference or frequency cap ruled it out at fan-out (reason in last_error)
] as const;
export type DeliveryState = (typeof deliveryStates)[number];

/**
 * States a delivery is created in: in-app deliveries are complete when written; a preference or
 * cap can rule a delivery out at fan-out (suppressed).
 */
export const initialStates: readonly DeliveryState[] = ['pending', 'delivered', 'suppressed'];

/**
 * Every move the code makes. Each store function enforces its own starting state in SQL;
 * this table is what docs/delivery-states.md draws (a test keeps the two equal).
 */
export const transitions: Record<DeliveryState, readonly DeliveryState[]> = {
  // → sent: a provider's acceptance that arrived after its attempt's lease was lost.
  pending: ['sending', 'canceled', 'sent'],
  retrying: ['sending', 'canceled', 'sent'],
  sending: ['sent', 'retrying', 'failed', 'target_invalid', 'dead'],
  sent: ['delivered', 'failed', 'bounced'], // provider receipts
  delivered: ['bounced'],
  failed: [],
  target_invalid: [],
  dead: ['pending', 'sent'], // replay; a late acceptance
  canceled: [],
  bounced: [],
  suppressed: [],
};

export function canTransition(from: DeliveryState, to: DeliveryState): boolean {
  return transitions[from].includes(to);
}
