// THE port every delivery channel's adapter implements. An adapter turns a rendered message
// into a call on its provider's wire protocol and classifies the answer as a DeliveryOutcome;
// an exception escaping send() is treated as a retry by the dispatcher.
import type { Channel, ChannelContent, Lane } from '../domain/notification.js';
import type { DeliveryOutcome } from '../domain/outcome.js';

import type { Platform, PushDevice } from '../domain/device.js';
import type { StatusUpdate } from '../domain/status-update.js';

export { platforms, type Platform, type PushDevice } from '../domain/device.js';
export type { StatusUpdate } from '../domain/status-update.js';

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
  /**
   * Secrets the sending service signs webhooks with: its current one, then one it rotated out
   * less than a day ago (each gives a signature). Empty: unsigned.
   */
  signingSecrets: readonly string[];
  /** For push: the device (target is its id). Null for every other channel. */
  device: PushDevice | null;
  /**
   * For email: Herald's signed one-click unsubscribe link for this user, channel and category
   * (set when PUBLIC_URL is); adapters put it in List-Unsubscribe.
   */
  unsubscribeUrl?: string | undefined;
  /**
   * For email without an html part, when opens are tracked: the open pixel's URL, which the
   * adapter's generated HTML body ends with. (A template's html part has it already.)
   */
  trackingPixelUrl?: string | undefined;
  /**
   * The W3C `traceparent` of this provider call (docs/tracing.md): the notification's trace id,
   * a span id new for each call. HTTP adapters send it as a request header. Built by Herald
   * from validated ids only, never a caller's header copied through.
   */
  traceparent?: string | undefined;
}

/** The `traceparent` header of a message's HTTP call, when it has one (spread into the headers). */
export function traceHeaders(message: Pick<RenderedMessage, 'traceparent'>): Record<string, string> {
  return message.traceparent === undefined ? {} : { traceparent: message.traceparent };
}

/** A provider's status report (delivery receipt, bounce) as it reached the callback endpoint. */
export interface CallbackRequest {
  /** The full URL the provider called, as it signed it (PUBLIC_URL + path + query). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
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
