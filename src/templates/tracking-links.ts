// Email open and click tracking links (docs/tracking.md): an open pixel and click-through links
// on the query role, signed with HMAC-SHA256 and expiring. A click link carries the delivery,
// the link's position in the rendered HTML and the target URL itself under the signature, so the
// redirect can only go to a link Herald rendered into that message: nothing is stored per email.
import { uuidPatternText } from '../domain/ids.js';
import { signFields, verifiedFields } from '../db/signed-token.js';

const uuidPattern = new RegExp(uuidPatternText);
const version = 't1';

export interface OpenClaim {
  kind: 'open';
  deliveryId: string;
  /** Expiry, seconds since the epoch. */
  expires: number;
}

export interface ClickClaim {
  kind: 'click';
  deliveryId: string;
  /** The link's position among the rewritten links of the HTML body (0-based). */
  index: number;
  url: string;
  expires: number;
}

export type TrackingClaim = OpenClaim | ClickClaim;

/** Why a token was refused: not signed by this key (or altered, or malformed), or expired. */
export type TrackingVerdict =
  { ok: true; claim: TrackingClaim } | { ok: false; reason: 'invalid' | 'expired' };

export interface TrackingLinkOptions {
  key: Uint8Array;
  /** Where recipients reach the query role, e.g. https://herald.example.com. */
  baseUrl: string;
  ttlSeconds: number;
  now: () => Date;
}

/** The longest target URL a click link carries; longer links are left untracked. */
export const maxTrackedUrlLength = 2048;

export class TrackingLinks {
  private readonly base: string;

  constructor(private readonly options: TrackingLinkOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
  }

  private expiry(): number {
    return Math.floor(this.options.now().getTime() / 1000) + this.options.ttlSeconds;
  }

  sign(claim: TrackingClaim): string {
    const fields =
      claim.kind === 'open'
        ? ['o', claim.deliveryId, claim.expires]
        : ['c', claim.deliveryId, claim.expires, claim.index, claim.url];
    return signFields(this.options.key, version, fields);
  }

  verify(token: string): TrackingVerdict {
    const claim = this.parse(token);
    if (claim === undefined) return { ok: false, reason: 'invalid' };
    if (claim.expires * 1000 <= this.options.now().getTime()) return { ok: false, reason: 'expired' };
    return { ok: true, claim };
  }

  private parse(token: string): TrackingClaim | undefined {
    const fields = verifiedFields(this.options.key, version, token);
    if (fields === undefined) return undefined;
    const [kind, deliveryId, expires, index, url] = fields;
    if (typeof deliveryId !== 'string' || !uuidPattern.test(deliveryId) || typeof expires !== 'number')
      return undefined;
    if (kind === 'o' && fields.length === 3) return { kind: 'open', deliveryId, expires };
    if (kind === 'c' && fields.length === 5 && typeof index === 'number' && typeof url === 'string')
      return { kind: 'click', deliveryId, expires, index, url };
    return undefined;
  }

  pixelUrl(deliveryId: string): string {
    return `${this.base}/v1/track/open/${this.sign({ kind: 'open', deliveryId, expires: this.expiry() })}`;
  }

  clickUrl(deliveryId: string, index: number, url: string): string {
    const token = this.sign({ kind: 'click', deliveryId, index, url, expires: this.expiry() });
    return `${this.base}/v1/track/click/${token}`;
  }

  /**
   * The HTML body with every http(s) link of an `<a href>` replaced by its click link, and the
   * open pixel before `</body>` (or at the end). Other links (mailto:, tel:, anchors) and links
   * longer than maxTrackedUrlLength are left as written.
   */
  trackHtml(html: string, deliveryId: string): string {
    let index = 0;
    const rewritten = html.replace(
      /(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')/gi,
      (whole, prefix: string, double: string | undefined, single: string | undefined) => {
        const url = decodeEntities(double ?? single ?? '').trim();
        if (!/^https?:\/\//i.test(url) || url.length > maxTrackedUrlLength) return whole;
        return `${prefix}"${escapeAttribute(this.clickUrl(deliveryId, index++, url))}"`;
      },
    );
    const pixel = `<img src="${escapeAttribute(this.pixelUrl(deliveryId))}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">`;
    const close = rewritten.search(/<\/body\s*>/i);
    return close === -1
      ? `${rewritten}${pixel}`
      : `${rewritten.slice(0, close)}${pixel}${rewritten.slice(close)}`;
  }
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (entity, name: string) => {
    const lower = name.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(Number.parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number.parseInt(lower.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] ?? entity;
  });
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A 1×1 transparent GIF. */
export const trackingPixel = Buffer.from(
  'R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7',
  'base64',
);
