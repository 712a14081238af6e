// User tokens: Herald's own (HS256) and an identity provider's, verified against its JWKS served
// by a loopback stand-in of the identity provider; every way a token can be wrong is 401, and an
// unreachable JWKS is 503, not a pass.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { bodyServer, closeServer, listenOnLoopback } from '../../test/helpers/loopback-server.js';
import { ProblemError } from '../domain/problems.js';
import { UserTokens } from './user-auth.js';

let idpKey: CryptoKey;
let otherKey: CryptoKey;
let jwksUrl: string;
let jwksRequests = 0;
const server = bodyServer((_req, res) => {
  jwksRequests += 1;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
});
let jwk: JWK;

before(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  idpKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  otherKey = (await generateKeyPair('ES256')).privateKey;
  jwksUrl = `${await listenOnLoopback(server)}/.well-known/jwks.json`;
});
after(() => closeServer(server));

const external = () => ({
  jwksUrl,
  issuer: 'https://id.example.com',
  audience: 'shop-app',
  userClaim: 'sub',
});

function idpToken(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; kid?: string; exp?: string | number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'idp-1' })
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? idpKey);
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; detail: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProblemError) return { code: error.code, detail: error.message };
    throw error;
  }
  throw new Error('the token was accepted');
}

describe("Herald's own tokens", () => {
  const secret = randomBytes(32);
  test('issued and verified; another secret, another audience or an expired one is refused', async () => {
    const now = new Date('2026-11-24T10:00:00Z');
    const tokens = new UserTokens({ secret, defaultTtlSeconds: 600, now: () => now });
    const issued = await tokens.issue('ada', 7);
    assert.equal(issued.expiresAt.toISOString(), '2026-11-24T10:10:00.000Z');
    assert.deepEqual(await tokens.verify(issued.token), {
      kind: 'token',
      userId: 'ada',
      keyId: 7,
      issuedAtMs: now.getTime(),
    });

    const stranger = new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600, now: () => now });
    assert.equal((await refusal(stranger.verify(issued.token))).code, 'unauthenticated');
    const later = new UserTokens({
      secret,
      defaultTtlSeconds: 600,
      now: () => new Date('2026-11-24T10:11:00Z'),
    });
    assert.match((await refusal(later.verify(issued.token))).detail, /expired/);
    // Signed with the right secret but not for the inbox.
    const foreign = await new SignJWT({ sub: 'ada' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('herald')
      .setAudience('something-else')
      .setExpirationTime('5m')
      .sign(secret);
    assert.equal((await refusal(tokens.verify(foreign))).code, 'unauthenticated');
    // Herald's secret but no issuing key: a token no key's revocation could end is refused.
    const keyless = await new SignJWT({ sub: 'ada' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('herald')
      .setAudience('herald-inbox')
      .setExpirationTime('5m')
      .sign(secret);
    assert.equal((await refusal(tokens.verify(keyless))).code, 'unauthenticated');
    // alg none is not a token.
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"ada"}').toString('base64url')}.`;
    assert.equal((await refusal(tokens.verify(unsigned))).code, 'unauthenticated');
  });
});

test('a token verified before is still refused from its expiry on, and its signature still counts', async () => {
  const secret = randomBytes(32);
  let now = new Date('2026-11-24T10:00:00Z');
  const tokens = new UserTokens({ secret, defaultTtlSeconds: 600, now: () => now });
  const { token } = await tokens.issue('ada', 7);
  assert.equal((await tokens.verify(token)).userId, 'ada');
  // The same claims under another signature are not the token that was verified.
  const [header, payload] = token.split('.');
  const forged = `${String(header)}.${String(payload)}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
  assert.equal((await refusal(tokens.verify(forged))).code, 'unauthenticated');
  now = new Date('2026-11-24T10:09:59.999Z');
  assert.equal((await tokens.verify(token)).userId, 'ada');
  now = new Date('2026-11-24T10:10:00Z');
  assert.match((await refusal(tokens.verify(token))).detail, /expired/);
});

describe("an identity provider's tokens", () => {
  test('are accepted with its issuer and audience, naming the user by the configured claim', async () => {
    const tokens = new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600, external: external() });
    const token = await idpToken({ iss: 'https://id.example.com', aud: 'shop-app', sub: 'bob' });
    const verified = await tokens.verify(token);
    assert.equal(verified.userId, 'bob');
    assert.equal(verified.keyId, undefined);
    assert.equal(typeof verified.issuedAtMs, 'number');
    const byClaim = new UserTokens({
      secret: randomBytes(32),
      defaultTtlSeconds: 600,
      external: { ...external(), userClaim: 'herald_user' },
    });
    assert.equal(
      (
        await byClaim.verify(
          await idpToken({ iss: 'https://id.example.com', aud: 'shop-app', herald_user: 'cai' }),
        )
      ).userId,
      'cai',
    );
    assert.ok(jwksRequests >= 1, 'the key set was fetched from the identity provider');
  });

  test('wrong issuer, audience, signing key, expiry or a missing user claim are refused', async () => {
    const tokens = new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600, external: external() });
    const good = { iss: 'https://id.example.com', aud: 'shop-app', sub: 'bob' };
    const cases = [
      await idpToken({ ...good, iss: 'https://evil.example.com' }),
      await idpToken({ ...good, aud: 'another-app' }),
      await idpToken(good, { key: otherKey }),
      await idpToken(good, { exp: Math.floor(Date.now() / 1000) - 60 }),
      await idpToken({ iss: good.iss, aud: good.aud }),
    ];
    for (const token of cases) assert.equal((await refusal(tokens.verify(token))).code, 'unauthenticated');
  });

  test('without a configured identity provider, only Herald tokens count', async () => {
    const tokens = new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600 });
    const token = await idpToken({ iss: 'https://id.example.com', aud: 'shop-app', sub: 'bob' });
    assert.equal((await refusal(tokens.verify(token))).code, 'unauthenticated');
  });

  test('an identity provider that cannot be reached, or answers no key set, is 503, not a pass or a 401', async () => {
    const down = bodyServer((req) => req.socket.destroy());
    const garbled = bodyServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":7}'),
    );
    const token = await idpToken({ iss: 'https://id.example.com', aud: 'shop-app', sub: 'bob' });
    try {
      for (const server of [down, garbled]) {
        const url = await listenOnLoopback(server);
        const tokens = new UserTokens({
          secret: randomBytes(32),
          defaultTtlSeconds: 600,
          external: { ...external(), jwksUrl: `${url}/jwks.json` },
        });
        assert.equal((await refusal(tokens.verify(token))).code, 'identity_provider_unavailable');
      }
    } finally {
      await closeServer(down);
      await closeServer(garbled);
    }
  });
});
