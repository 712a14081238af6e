// One-click unsubscribe tokens (RFC 8058): the delivery id, user, channel and category, signed
// with HMAC-SHA256. Nothing is stored per email sent; the delivery id makes a token single-use
// (unsubscribe_tokens records it when used).
import { uuidPatternText } from '../../domain/ids.js';
import { channels, type Channel } from '../../domain/notification.js';
import { signFields, verifiedFields } from '../../db/signed-token.js';

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

  sign(claim: UnsubscribeClaim): string {
    return signFields(this.key, version, [claim.deliveryId, claim.userId, claim.channel, claim.category]);
  }

  /** The claim of a token this key signed; undefined for anything forged, altered or malformed. */
  verify(token: string): UnsubscribeClaim | undefined {
    const parsed = verifiedFields(this.key, version, token);
    if (parsed === undefined || parsed.length !== 4 || !parsed.every((x) => typeof x === 'string'))
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
