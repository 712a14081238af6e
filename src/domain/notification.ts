// What a caller asks Herald to send: lanes, channels and per-channel content.

export const lanes = ['transactional', 'bulk'] as const;
export type Lane = (typeof lanes)[number];

/** Channels Herald knows. Adapters for push, SMS, email and chat arrive with their providers. */
export const channels = ['in_app', 'webhook', 'push', 'sms', 'email', 'chat'] as const;
export type Channel = (typeof channels)[number];

/** Content per channel; every channel falls back to `default` for the fields it lacks. */
export interface ChannelContent {
  title?: string;
  body?: string;
  url?: string;
  /** Free-form status a caller updates over time, e.g. 'installing' → 'done'. */
  status?: string;
}

export type NotificationContent = Partial<Record<Channel | 'default', ChannelContent>>;

export interface NotificationSnapshot {
  id: string;
  version: number;
  lane: Lane;
  category: string;
  content: NotificationContent;
  data: Record<string, unknown> | null;
}

/** Content a channel shows: its own fields over the defaults. */
export function contentFor(content: NotificationContent, channel: Channel): ChannelContent {
  return { ...content.default, ...content[channel] };
}
