// THE port every delivery channel's adapter implements. An adapter turns a rendered message
// into a call on its provider's wire protocol and classifies the answer as a DeliveryOutcome;
// an exception escaping send() is treated as a retry by the dispatcher.
import type { Channel, ChannelContent, Lane } from '../domain/notification.js';
import type { DeliveryOutcome } from '../domain/outcome.js';

export const platforms = ['ios', 'android', 'web'] as const;
export type Platform = (typeof platforms)[number];

/** The device a push delivery goes to, as registered through the devices API. */
export interface PushDevice {
  id: string;
  platform: Platform;
  /** The app the token belongs to: bundle id (APNs), app id (FCM), web app id (Web Push). */
  appId: string;
  /** APNs hex token, FCM registration token, or the Web Push subscription as JSON. */
  token: string;
}

export interface RenderedMessage {
  deliveryId: string;
  notificationId: string;
  /** The notification's version this message was rendered from (newer replaces older on the target). */
  version: number;
  channel: Channel;
  /** Device id, address or URL, per channel. */
  target: string;
  userId: string;
  lane: Lane;
  category: string;
  attempt: number;
  content: ChannelContent;
  /**
   * For email from a template with an html part: the HTML body, already rendered with every
   * parameter HTML-escaped (src/templates/template-renderer.ts). Used as is.
   */
  html?: string | undefined;
  data: Record<string, unknown> | null;
  /** Secret the sending service signs webhooks with. */
  signingSecret: string | null;
  /** For push: the device (target is its id). Null for every other channel. */
  device: PushDevice | null;
  /**
   * For email: Herald's signed one-click unsubscribe link for this user, channel and category
   * (set when PUBLIC_URL is); adapters put it in List-Unsubscribe.
   */
  unsubscribeUrl?: string | undefined;
}

/** A provider's status report (delivery receipt, bounce) as it reached the callback endpoint. */
export interface CallbackRequest {
  /** The full URL the provider called, as it signed it (PUBLIC_URL + path + query). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

/** What a status report says about one delivery, found by the provider's message id. */
export interface StatusUpdate {
  providerMessageId: string;
  /** 'complained' (marked as spam) is recorded as an event; the delivery's state stays. */
  state: 'delivered' | 'failed' | 'bounced' | 'complained';
  detail: string | null;
  /** The address or number is bad for good (hard bounce, landline): stop using it. */
  targetInvalid?: boolean;
}

export type CallbackResult =
  /** `challenge`: a WWW-Authenticate value for the 401 (SNS sends Basic credentials only when challenged). */
  | { ok: false; status: 400 | 401; reason: string; challenge?: string }
  /** `ignored` counts reports that need no change (e.g. Twilio's intermediate 'sending'). */
  | { ok: true; updates: StatusUpdate[]; ignored: number };

export interface ChannelProvider {
  /** Unique among configured providers; names its circuit, metrics and callback path. */
  readonly name: string;
  readonly channel: Channel;
  /** Push providers: the platform they serve and, if set, only these app ids. */
  readonly serves?: { platform: Platform; appIds?: readonly string[] };
  send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome>;
  /**
   * What this provider would refuse in a notification's content for its channel (e.g. a push
   * payload over the provider's size limit), checked at ingest; null when it fits.
   */
  checkContent?(content: ChannelContent, data: Record<string, unknown> | null): string | null;
  /** Authenticates and parses a status report posted to POST /v1/callbacks/<name>. */
  handleCallback?(request: CallbackRequest): Promise<CallbackResult> | CallbackResult;
  close(): Promise<void>;
}
