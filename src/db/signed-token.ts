// Tokens Herald signs with its keys (signing_keys) into the links it sends (one-click unsubscribe,
// email tracking): `<version>.<base64url of a JSON array>.<base64url HMAC-SHA256 of "<version>.<payload>">`.
// Nothing is stored per token; the key and the version say whether Herald made it.
import { createHmac, timingSafeEqual } from 'node:crypto';

function mac(key: Uint8Array, version: string, payload: string): string {
  return createHmac('sha256', key).update(`${version}.${payload}`).digest('base64url');
}

export function signFields(key: Uint8Array, version: string, fields: readonly unknown[]): string {
  const payload = Buffer.from(JSON.stringify(fields)).toString('base64url');
  return `${version}.${payload}.${mac(key, version, payload)}`;
}

/** The fields of a token this key signed with this version; undefined if forged, altered or malformed. */
export function verifiedFields(key: Uint8Array, version: string, token: string): unknown[] | undefined {
  const [v, payload, given, ...rest] = token.split('.');
  if (v !== version || payload === undefined || given === undefined || rest.length > 0) return undefined;
  const expected = Buffer.from(mac(key, version, payload));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return undefined;
  try {
    const fields: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return Array.isArray(fields) ? fields : undefined;
  } catch {
    return undefined;
  }
}
