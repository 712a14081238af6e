// Engagement (docs/tracking.md): what counts as an open, a click or a read, how a prefetched open
// is told apart, and the figures' shape.

export const engagementKinds = ['opened', 'clicked', 'read'] as const;
export type EngagementKind = (typeof engagementKinds)[number];

/**
 * Whether the pixel's User-Agent is one a prefetching proxy is reported to send: Apple's Mail
 * Privacy Protection proxy fetches with the bare `Mozilla/5.0`. Gmail's and Yahoo's image
 * proxies fetch when the person opens the message, so they count as opens.
 */
export function isPrefetchUserAgent(userAgent: string | undefined): boolean {
  return userAgent !== undefined && userAgent.trim() === 'Mozilla/5.0';
}

/** The figures, per row of the engagement API and the console. */
export const engagementMetrics = [
  'sent',
  'delivered',
  'opened',
  'opened_prefetch',
  'clicked',
  'read',
  'failed',
  'suppressed',
] as const;
export type EngagementMetric = (typeof engagementMetrics)[number];

export const engagementGroupings = ['day', 'template', 'channel', 'category'] as const;
export type EngagementGrouping = (typeof engagementGroupings)[number];

/** The longest range the figures API answers, in days. */
export const maxEngagementRangeDays = 366;
