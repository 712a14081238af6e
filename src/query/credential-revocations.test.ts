// When a user token or a key stops holding: the key behind it revoked, or the user's tokens
// revoked after it was issued (exact issue times for Herald's tokens, whole seconds for an
// identity provider's, whose iat is the earliest the token can have been issued); cached briefly, forgotten at once on the revocation's hint.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { createApiKey, ensureService, findCallerByKey, revokeApiKey } from '../db/stores/api-key-store.js';
import { revokeUserTokens } from '../db/stores/user-token-store.js';
import { CredentialRevocations, type Credential } from './credential-revocations.js';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

async function liveKey(): Promise<{ key: string; keyId: number }> {
  const key = await createApiKey(db.pool, await ensureService(db.pool, 'shop'), ['user_tokens']);
  const caller = await findCallerByKey(db.pool, key);
  assert.ok(caller !== undefined);
  return { key, keyId: caller.keyId };
}

const token = (userId: string, keyId: number | undefined, issuedAtMs: number | undefined): Credential => ({
  kind: 'token',
  userId,
  keyId,
  issuedAtMs,
});

describe('revoked keys', () => {
  test('a token of a revoked key is refused; cached until forgotten, then seen', async () => {
    let now = 0;
    const revocations = new CredentialRevocations({ pool: db.pool, cacheMs: 60_000, now: () => now });
    const { key, keyId } = await liveKey();
    const credential = token('ada', keyId, Date.now());
    assert.equal(await revocations.check(credential), undefined);
    await revokeApiKey(db.pool, key);
    assert.equal(await revocations.check(credential), undefined, 'the cached answer holds until forgotten');
    revocations.forget(`key:${String(keyId)}`);
    assert.match((await revocations.check(credential)) ?? '', /key that issued the token was revoked/);
    // Without the hint, the cache time bounds it.
    const other = await liveKey();
    const otherCredential = token('ada', other.keyId, Date.now());
    assert.equal(await revocations.check(otherCredential), undefined);
    await revokeApiKey(db.pool, other.key);
    now += 60_001;
    assert.notEqual(await revocations.check(otherCredential), undefined);
    assert.deepEqual(
      await revocations.revokedAmong([{ credential }, { credential: token('ada', undefined, 1) }]),
      [{ credential }],
    );
  });
  test('a lookup in flight when a revocation is forgotten does not cache what it read before', async () => {
    const revocations = new CredentialRevocations({ pool: db.pool, cacheMs: 60_000 });
    const { key, keyId } = await liveKey();
    const credential = token('ada', keyId, Date.now());
    const inFlight = revocations.check(credential); // reads "live" while the revocation commits
    revocations.forget(`key:${String(keyId)}`);
    assert.equal(await inFlight, undefined);
    await revokeApiKey(db.pool, key);
    assert.match((await revocations.check(credential)) ?? '', /key that issued the token was revoked/);
  });
});

describe("a user's tokens revoked before a time", () => {
  test('exact issue times: before is refused, at or after is not; keys are not user tokens', async () => {
    const revocations = new CredentialRevocations({ pool: db.pool, cacheMs: 0 });
    const { keyId } = await liveKey();
    const at = new Date('2026-12-01T10:00:00.500Z');
    await revokeUserTokens(db.pool, 'bo', at);
    assert.notEqual(await revocations.check(token('bo', keyId, at.getTime() - 1)), undefined);
    assert.equal(await revocations.check(token('bo', keyId, at.getTime())), undefined);
    assert.equal(await revocations.check(token('bo', keyId, at.getTime() + 1)), undefined);
    assert.equal(await revocations.check(token('cy', keyId, at.getTime() - 1)), undefined, 'another user');
    assert.equal(
      await revocations.check({
        kind: 'key',
        userId: 'bo',
        keyId,
        issuedAtMs: undefined,
      }),
      undefined,
    );
    // A later revocation never moves the time back.
    assert.equal(
      (await revokeUserTokens(db.pool, 'bo', new Date(at.getTime() - 60_000))).getTime(),
      at.getTime(),
    );
  });

  test("an identity provider's whole-second iat: the revocation's own second is refused, and so is no iat", async () => {
    const revocations = new CredentialRevocations({ pool: db.pool, cacheMs: 0 });
    const at = new Date('2026-12-01T10:00:00.500Z');
    await revokeUserTokens(db.pool, 'di', at);
    const second = Date.parse('2026-12-01T10:00:00Z');
    assert.notEqual(await revocations.check(token('di', undefined, second)), undefined);
    assert.equal(await revocations.check(token('di', undefined, second + 1000)), undefined);
    assert.notEqual(await revocations.check(token('di', undefined, undefined)), undefined);
  });
});
