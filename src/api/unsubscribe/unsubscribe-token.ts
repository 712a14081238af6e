// One-click unsubscribe tokens (RFC 8058): the delivery id, user, channel and category, signed
// with HMAC-SHA256. Nothing is stored per email sent; the delivery id makes a token single-use
// (unsubscribe_tokens records it when used).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { uuidPatternText } from '../../domain/ids.js';
import { channels, type Channel } from '../../domain/notification.js';

const uuidPattern = new RegExp(uuidPatternText);

export interface UnsubscribeClaim {
  deliveryId: string;
  userId: string;
  channel: Channel;
  category: string;
}

const version = 'v1';

export class UnsubscribeTokens {
  constructor(private readonly key: Buffer) {}

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`${version}.${payload}`).digest('base64url');
  }

  sign(claim: UnsubscribeClaim): string {
    const payload = Buffer.from(
      JSON.stringify([claim.deliveryId, claim.userId, claim.channel, claim.category]),
    ).toString('base64url');
    return `${version}.${payload}.${this.mac(payload)}`;
  }

  /** The claim of a token this key signed; undefined for anything forged, altered or malformed. */
  verify(token: string): UnsubscribeClaim | undefined {
    const [v, payload, mac, ...rest] = token.split('.');
    if (v !== version || payload === undefined || mac === undefined || rest.length > 0) return undefined;
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (!Array.isArray(parsed) || parsed.length !== 4 || !parsed.every((x) => typeof x === 'string'))
      return undefined;
    const [deliveryId, userId, channel, category] = parsed as [string, string, string, string];
    if (!(channels as readonly string[]).includes(channel) || !uuidPattern.test(deliveryId)) return undefined;
    return { deliveryId, userId, channel: channel as Channel, category };
  }

  /** The link for an email delivery, under the api role's public URL. */
  url(publicUrl: string, claim: UnsubscribeClaim): string {
    return `${publicUrl.replace(/\/+$/, '')}/v1/unsubscribe/${this.sign(claim)}`;
  }
}
