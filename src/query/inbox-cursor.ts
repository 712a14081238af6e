// The inbox list's cursor: the position of a page's last item, signed with the user id.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProblemError } from '../domain/problems.js';
import type { InboxPosition } from '../db/stores/inbox-store.js';

/**
 * Cursors are opaque: the position of the page's last item, signed together with the user id,
 * so a cursor given to one user is refused for another (400 cursor_invalid, whatever it names).
 */
export class CursorCodec {
  constructor(private readonly key: Uint8Array) {}

  encode(userId: string, position: InboxPosition): string {
    const payload = Buffer.from(`${String(position.arrivedUs)}:${position.id}`, 'utf8').toString('base64url');
    return `${payload}.${this.sign(userId, payload)}`;
  }

  decode(userId: string, cursor: string): InboxPosition {
    const [payload, signature, extra] = cursor.split('.');
    const invalid = new ProblemError('cursor_invalid', 'Use the next_cursor of a page of this inbox.');
    if (payload === undefined || signature === undefined || extra !== undefined) throw invalid;
    const expected = Buffer.from(this.sign(userId, payload), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalid;
    const text = Buffer.from(payload, 'base64url').toString('utf8');
    const colon = text.indexOf(':');
    const arrivedUs = Number(text.slice(0, colon));
    if (colon < 1 || !Number.isSafeInteger(arrivedUs)) throw invalid;
    return { arrivedUs, id: text.slice(colon + 1) };
  }

  private sign(userId: string, payload: string): string {
    return createHmac('sha256', this.key)
      .update(`inbox-cursor\n${userId}\n${payload}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
