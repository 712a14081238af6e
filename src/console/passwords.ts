// Console passwords: scrypt from node:crypto (memory-hard, no native build), stored as
// `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` so the cost can rise later without breaking old hashes.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const current = { logN: 15, r: 8, p: 1 };
const keyLength = 32;
/** Shortest password the console accepts: long enough that the lockout, not luck, decides. */
export const minPasswordLength = 12;
export const maxPasswordLength = 256;

function derive(
  password: string,
  salt: Buffer,
  options: { logN: number; r: number; p: number },
): Promise<Buffer> {
  const params: ScryptOptions = {
    N: 2 ** options.logN,
    r: options.r,
    p: options.p,
    // 128 × N × r bytes, with room to spare.
    maxmem: 256 * 2 ** options.logN * options.r,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, params, (error, key) => {
      if (error === null) resolve(key);
      else reject(error);
    });
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, current);
  return ['scrypt', current.logN, current.r, current.p, salt.toString('base64'), key.toString('base64')].join(
    '$',
  );
}

/** Whether `password` matches `stored`; false for a malformed stored value. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const options = { logN: Number(logN), r: Number(r), p: Number(p) };
  if (![options.logN, options.r, options.p].every((n) => Number.isInteger(n) && n > 0 && n < 32))
    return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await derive(password, Buffer.from(salt, 'base64'), options);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Spends the same work as a real check, so an unknown email answers as slowly as a wrong password. */
let decoy: Promise<string> | undefined;
export async function verifyDecoy(password: string): Promise<void> {
  decoy ??= hashPassword(randomBytes(16).toString('base64'));
  await verifyPassword(password, await decoy);
}

/** A password for a new account, printed once: 20 characters from 120 random bits. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}
