// Delivery states and the transitions between them. docs/delivery-states.md draws the same machine.

export const deliveryStates = [
  'pending', // waiting to be claimed (run_at may lie in the future)
  'retrying', // an attempt failed in a retryable way; claimable again at run_at
  'sending', // claimed by a worker under a lease
  'sent', // accepted by the provider
  'delivered', // reached its destination (in-app inbox; provider receipts later)
  'failed', // permanent failure answered by the provider
  'target_invalid', // the device token or address is invalid; the target was disabled
  'dead', // out of attempts; listed in dead letters and replayable
  'canceled', // canceled by the caller before it was sent
] as const;
export type DeliveryState = (typeof deliveryStates)[number];

export const claimableStates: readonly DeliveryState[] = ['pending', 'retrying'];
export const terminalStates: readonly DeliveryState[] = [
  'sent',
  'delivered',
  'failed',
  'target_invalid',
  'dead',
  'canceled',
];

const transitions: Record<DeliveryState, readonly DeliveryState[]> = {
  pending: ['sending', 'canceled', 'delivered'],
  retrying: ['sending', 'canceled'],
  sending: ['sent', 'delivered', 'retrying', 'failed', 'target_invalid', 'dead'],
  sent: ['delivered', 'failed'],
  delivered: [],
  failed: [],
  target_invalid: [],
  dead: ['pending'], // replay
  canceled: [],
};

export function canTransition(from: DeliveryState, to: DeliveryState): boolean {
  return transitions[from].includes(to);
}

export function isTerminal(state: DeliveryState): boolean {
  return terminalStates.includes(state);
}
