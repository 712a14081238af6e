// What a provider's status report (delivery receipt, bounce) says about one delivery.

/** Found by the provider's message id. */
export interface StatusUpdate {
  providerMessageId: string;
  /** 'complained' (marked as spam) is recorded as an event; the delivery's state stays. */
  state: 'delivered' | 'failed' | 'bounced' | 'complained';
  detail: string | null;
  /** The address or number is bad for good (hard bounce, landline): stop using it. */
  targetInvalid?: boolean;
}
