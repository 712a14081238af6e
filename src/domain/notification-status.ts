// A notification's status, summed up from its recipients and deliveries: the api role shows it
// in GET /v1/notifications/:id and the console on a notification's page.

export const notificationStatuses = ['scheduled', 'accepted', 'processing', 'completed', 'canceled'] as const;
export type NotificationStatus = (typeof notificationStatuses)[number];

/** What the status is computed from: a notification's send time, cancellation and rows' states. */
export interface StatusFacts {
  sendAt: Date | null;
  canceledAt: Date | null;
  recipients: readonly { state: string }[];
  deliveries: readonly { state: string }[];
  /** A topic send whose subscribers are not all expanded into recipients yet. */
  expanding?: boolean;
}

export function notificationStatus(facts: StatusFacts, now: Date): NotificationStatus {
  const pendingRecipients = facts.expanding === true || facts.recipients.some((r) => r.state === 'pending');
  const openDeliveries = facts.deliveries.some((d) => ['pending', 'retrying', 'sending'].includes(d.state));
  if (facts.canceledAt !== null && !pendingRecipients && !openDeliveries) return 'canceled';
  if (pendingRecipients) return facts.sendAt !== null && facts.sendAt > now ? 'scheduled' : 'accepted';
  // Held by a workflow step that has not sent yet (docs/workflows.md): it will be sent later.
  if (facts.recipients.some((r) => r.state === 'held')) return 'scheduled';
  return openDeliveries ? 'processing' : 'completed';
}
