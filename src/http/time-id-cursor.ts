// The opaque page cursor of lists ordered by (time, uuid), newest first (the dead-letter lists):
// base64url of "<ISO time>|<uuid>". A cursor this API did not give out is 400 cursor_invalid.
import { uuidPatternText } from '../domain/ids.js';
import { ProblemError } from '../domain/problems.js';

export function encodeTimeIdCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

export function decodeTimeIdCursor(cursor: string): { at: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(iso ?? '');
  const year = at.getUTCFullYear();
  if (
    id === undefined ||
    Number.isNaN(year) ||
    year < 2000 ||
    year > 9999 ||
    !new RegExp(uuidPatternText).test(id)
  )
    throw new ProblemError('cursor_invalid', 'The cursor is not one this API returned.', [
      { field: 'querystring/cursor', message: 'invalid' },
    ]);
  return { at, id };
}
