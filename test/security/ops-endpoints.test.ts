// Where /metrics, /docs and /openapi.json are served, and to whom: by default on the api and
// query ports to anyone; with OPS_ENDPOINTS=ops-port only on OPS_PORT (each role's documents
// under /api and /query); with OPS_TOKEN only to a bearer of the token. /healthz and /readyz
// answer everywhere without credentials (load balancers).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { freePort } from '../helpers/free-port.js';
import { publicRoutes } from '../helpers/public-routes.js';
import { assertProblem, readResponse } from '../helpers/problem-response.js';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

const opsPaths = ['/metrics', '/openapi.json', '/docs', '/docs/json', '/docs/static/index.html'];
const healthPaths = ['/healthz', '/readyz'];

async function statusOf(url: string, authorization?: string): Promise<number> {
  const response = await fetch(url, {
    headers: authorization === undefined ? {} : { authorization },
    redirect: 'manual',
  });
  await response.arrayBuffer();
  return response.status;
}

/** The api and query servers' base URLs. */
function servers(h: TestHerald): string[] {
  return [h.herald.apiUrl ?? '', h.herald.queryUrl ?? ''];
}

describe('OPS_ENDPOINTS=public (the default)', () => {
  let h: TestHerald;
  before(async () => {
    h = await startTestHerald(db, { roles: ['api', 'query'] });
  });
  after(() => h.stop());

  test('the api and query ports serve metrics and documents to anyone; no ops port', async () => {
    for (const base of servers(h)) {
      for (const path of [...opsPaths, ...healthPaths]) {
        const status = await statusOf(`${base}${path}`);
        assert.ok(status === 200 || status === 302, `${base}${path}: ${String(status)}`);
      }
    }
    assert.equal(h.herald.opsUrl, undefined);
  });
});

describe('OPS_ENDPOINTS=ops-port', () => {
  let h: TestHerald;
  before(async () => {
    h = await startTestHerald(db, {
      roles: ['api', 'query'],
      env: { OPS_ENDPOINTS: 'ops-port', OPS_PORT: String(await freePort()) },
    });
  });
  after(() => h.stop());

  test('the api and query ports answer 404 route_not_found for them, and keep health', async () => {
    for (const base of servers(h)) {
      for (const path of opsPaths) {
        const response = await readResponse(await fetch(`${base}${path}`));
        assertProblem(response, `${base}${path}`, { status: 404, code: 'route_not_found' });
      }
      for (const path of healthPaths) assert.equal(await statusOf(`${base}${path}`), 200, `${base}${path}`);
    }
  });

  test("the ops port serves health, metrics and each role's documents", async () => {
    const ops = h.herald.opsUrl ?? '';
    assert.notEqual(ops, '');
    for (const path of [...healthPaths, '/metrics', '/api/docs', '/query/docs'])
      assert.equal(await statusOf(`${ops}${path}`), 200, path);
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    assert.match(metrics, /herald_template_render_failures_total/);
    for (const [role, route] of [
      ['api', '/v1/notifications'],
      ['query', '/v1/users/{userId}/inbox'],
    ] as const) {
      for (const path of [`/${role}/openapi.json`, `/${role}/docs/json`]) {
        const doc = (await (await fetch(`${ops}${path}`)).json()) as { paths: Record<string, unknown> };
        assert.ok(route in doc.paths, `${path} documents ${route}`);
      }
    }
  });
});

describe('OPS_TOKEN', () => {
  const token = randomBytes(32).toString('base64url');
  let h: TestHerald;
  before(async () => {
    h = await startTestHerald(db, { roles: ['api', 'query'], env: { OPS_TOKEN: token } });
  });
  after(() => h.stop());

  test('metrics and documents need the token as a bearer: 401 unauthenticated otherwise', async () => {
    const wrong = [
      undefined,
      `Bearer ${token.slice(0, -1)}`,
      `Bearer ${token}x`,
      `Basic ${Buffer.from(`ops:${token}`).toString('base64')}`,
      `Bearer ${h.apiKey}`,
      token,
    ];
    for (const base of servers(h)) {
      for (const path of opsPaths) {
        for (const authorization of wrong) {
          const response = await readResponse(
            await fetch(`${base}${path}`, { headers: authorization === undefined ? {} : { authorization } }),
          );
          assertProblem(response, `${path} with ${String(authorization?.slice(0, 8))}`, {
            status: 401,
            code: 'unauthenticated',
          });
          assert.ok(!response.text.includes(token), 'the token is not echoed');
        }
        const status = await statusOf(`${base}${path}`, `Bearer ${token}`);
        assert.ok(status === 200 || status === 302, `${base}${path} with the token: ${String(status)}`);
      }
      for (const path of healthPaths) assert.equal(await statusOf(`${base}${path}`), 200, `${base}${path}`);
    }
  });

  test('the route list helper reads the documents with the token; API routes are unaffected', async () => {
    const routes = await publicRoutes(servers(h), { token });
    assert.ok(routes.some((r) => r.path === '/v1/notifications'));
    const service = await h.call('GET', '/v1/service');
    assert.equal(service.status, 200);
  });
});

describe('OPS_ENDPOINTS=ops-port with OPS_TOKEN', () => {
  const token = randomBytes(32).toString('base64url');
  let h: TestHerald;
  before(async () => {
    h = await startTestHerald(db, {
      roles: ['api', 'query'],
      env: { OPS_ENDPOINTS: 'ops-port', OPS_PORT: String(await freePort()), OPS_TOKEN: token },
    });
  });
  after(() => h.stop());

  test('the ops port asks for the token for metrics and documents, not for health', async () => {
    const ops = h.herald.opsUrl ?? '';
    for (const path of ['/metrics', '/api/openapi.json', '/query/docs', '/query/docs/json']) {
      assert.equal(await statusOf(`${ops}${path}`), 401, path);
      assert.equal(await statusOf(`${ops}${path}`, `Bearer ${token}`), 200, path);
    }
    for (const path of healthPaths) assert.equal(await statusOf(`${ops}${path}`), 200, path);
  });
});
