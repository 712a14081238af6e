// Whether a user token (or the key behind it) has been revoked. A token names the user and, when
// Herald issued it, the key that asked for it; it is refused once that key is revoked or the
// user's tokens were revoked after it was issued. Answers are cached briefly per key and per user
// so a busy inbox does not pay a query per request; the herald_auth NOTIFY of a revocation drops
// the entry at once, and the cache time bounds what a lost hint leaves (docs/security.md).
import type { Pool } from '../db/pools.js';
import { revokedKeys } from '../db/stores/api-key-store.js';
import { userTokenRevocations } from '../db/stores/user-token-store.js';

/** What a request or an open stream was authorised with, as far as revocation is concerned. */
export interface Credential {
  userId: string;
  /**
   * When the token was issued, in ms since 1970: exact for Herald's own tokens; from `iat`
   * (whole seconds, so the earliest it can have been) for an identity provider's; undefined when
   * it does not say.
   */
  issuedAtMs: number | undefined;
  /** The key that issued the token (Herald's own tokens) or that calls directly. */
  keyId: number | undefined;
  /** Whether this is a user token (subject to the user's revocations) or a key. */
  kind: 'token' | 'key';
}

interface Entry<T> {
  value: T;
  until: number;
}

export interface CredentialRevocationOptions {
  pool: Pool;
  cacheMs?: number;
  now?: () => number;
}

export class CredentialRevocations {
  private readonly keys = new Map<number, Entry<boolean>>();
  private readonly users = new Map<string, Entry<Date | null>>();
  private readonly cacheMs: number;
  private readonly now: () => number;
  /** Counts forgets, so a lookup that was in flight when one came does not cache what it read. */
  private forgets = 0;

  constructor(private readonly options: CredentialRevocationOptions) {
    this.cacheMs = options.cacheMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  /** Why a credential no longer holds, or undefined while it does. */
  async check(credential: Credential): Promise<string | undefined> {
    if (credential.keyId !== undefined && (await this.isKeyRevoked(credential.keyId)))
      return credential.kind === 'key'
        ? 'the API key was revoked'
        : 'the key that issued the token was revoked';
    if (credential.kind === 'token') {
      const before = await this.userRevokedBefore(credential.userId);
      if (before !== null && isIssuedBefore(credential, before)) return "the user's tokens were revoked";
    }
    return undefined;
  }

  /** The credentials of `list` that no longer hold, checked against the database now (no cache). */
  async revokedAmong<T extends { credential: Credential }>(list: readonly T[]): Promise<T[]> {
    if (list.length === 0) return [];
    const keyIds = [
      ...new Set(list.flatMap((c) => (c.credential.keyId === undefined ? [] : [c.credential.keyId]))),
    ];
    const userIds = [
      ...new Set(list.filter((c) => c.credential.kind === 'token').map((c) => c.credential.userId)),
    ];
    const [keys, users] = await Promise.all([
      revokedKeys(this.options.pool, keyIds),
      userTokenRevocations(this.options.pool, userIds),
    ]);
    return list.filter(({ credential }) => {
      if (credential.keyId !== undefined && keys.has(credential.keyId)) return true;
      const before = credential.kind === 'token' ? users.get(credential.userId) : undefined;
      return before !== undefined && isIssuedBefore(credential, before);
    });
  }

  /** A herald_auth payload: `key:<id>`, `user:<id>`, or anything else (after a reconnect): all. */
  forget(payload: string): void {
    this.forgets += 1;
    if (payload.startsWith('key:')) this.keys.delete(Number(payload.slice('key:'.length)));
    else if (payload.startsWith('user:')) this.users.delete(payload.slice('user:'.length));
    else {
      this.keys.clear();
      this.users.clear();
    }
  }

  private async isKeyRevoked(keyId: number): Promise<boolean> {
    const hit = this.keys.get(keyId);
    if (hit !== undefined && hit.until > this.now()) return hit.value;
    const forgets = this.forgets;
    const revoked = (await revokedKeys(this.options.pool, [keyId])).has(keyId);
    if (forgets === this.forgets) this.remember(this.keys, keyId, revoked);
    return revoked;
  }

  private async userRevokedBefore(userId: string): Promise<Date | null> {
    const hit = this.users.get(userId);
    if (hit !== undefined && hit.until > this.now()) return hit.value;
    const forgets = this.forgets;
    const before = (await userTokenRevocations(this.options.pool, [userId])).get(userId) ?? null;
    if (forgets === this.forgets) this.remember(this.users, userId, before);
    return before;
  }

  private remember<K, T>(map: Map<K, Entry<T>>, key: K, value: T): void {
    if (map.size >= 10_000) map.clear();
    map.set(key, { value, until: this.now() + this.cacheMs });
  }
}

/**
 * Whether a revocation at `before` covers the token. An `iat` in whole seconds is the earliest
 * the token can have been issued, so one in the revocation's own second is covered; a token that
 * does not say when it was issued cannot show it came after, so it is covered too.
 */
function isIssuedBefore(credential: Credential, before: Date): boolean {
  return credential.issuedAtMs === undefined || credential.issuedAtMs < before.getTime();
}
