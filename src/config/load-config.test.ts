import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './load-config.js';
import { renderConfigDocs } from './config-docs.js';
import { packageRoot } from '../db/package-root.js';

test('defaults apply when nothing is set', () => {
  const config = loadConfig({});
  assert.equal(config.API_PORT, 3000);
  assert.equal(config.DATABASE_URL, undefined);
  assert.equal(config.TRANSACTIONAL_RESERVED_SHARE, 0.25);
});

test('every bad setting is named at once', () => {
  let caught: unknown;
  assert.throws(
    () => loadConfig({ API_PORT: '70000', WORKER_CONCURRENCY: 'many', LOG_LEVEL: 'loud', DATABASE_URL: '' }),
    (e: unknown) => {
      caught = e;
      return e instanceof ConfigError;
    },
  );
  assert.ok(caught instanceof ConfigError);
  assert.deepEqual(
    caught.problems.map((p) => p.split('=')[0]),
    ['API_PORT', 'LOG_LEVEL', 'WORKER_CONCURRENCY'],
  );
  assert.match(
    caught.message,
    /LOG_LEVEL="loud": must be one of fatal, error, warn, info, debug, trace, silent/,
  );
});

test('an unreadable provider file is named', () => {
  assert.throws(
    () => loadConfig({ HERALD_CONFIG_FILE: '/nonexistent/herald.json' }),
    (e: unknown) => e instanceof ConfigError && /HERALD_CONFIG_FILE=.*cannot be read/.test(e.message),
  );
});

test('docs/configuration.md matches the schema (regenerate with npm run docs:config)', () => {
  assert.equal(readFileSync(join(packageRoot, 'docs/configuration.md'), 'utf8'), renderConfigDocs());
});

test('a webhook timeout as long as the lease is rejected', () => {
  assert.throws(
    () => loadConfig({ WEBHOOK_TIMEOUT_MS: '5000', LEASE_SECONDS: '5' }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /WEBHOOK_TIMEOUT_MS=5000: must be shorter than LEASE_SECONDS/.test(e.message),
  );
});

test('OUTBOUND_ALLOWED_NETWORKS: every entry must be a network, and each bad one is named', () => {
  assert.equal(
    loadConfig({ OUTBOUND_ALLOWED_NETWORKS: '10.20.0.0/16, fd00:1::/64,192.0.2.7' })
      .OUTBOUND_ALLOWED_NETWORKS,
    '10.20.0.0/16, fd00:1::/64,192.0.2.7',
  );
  assert.throws(
    () => loadConfig({ OUTBOUND_ALLOWED_NETWORKS: '10.0.0.0/33,intranet,10.1.0.0/8', API_PORT: '-1' }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.length === 4 &&
      /API_PORT/.test(e.message) &&
      /10\.0\.0\.0\/33: the prefix must be 0–32/.test(e.message) &&
      /intranet is not an IP address or network/.test(e.message) &&
      /10\.1\.0\.0\/8 has bits set past its prefix \(the network is 10\.0\.0\.0\/8\)/.test(e.message),
  );
});

test('a headers timeout longer than the request timeout is rejected (Node would refuse to start)', () => {
  assert.throws(
    () => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_HEADERS_TIMEOUT_MS: '3000' }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /HTTP_HEADERS_TIMEOUT_MS=3000: must not exceed HTTP_REQUEST_TIMEOUT_MS/.test(e.message),
  );
});

test('OPS_ENDPOINTS=ops-port needs an OPS_PORT; OPS_TOKEN must be long', () => {
  assert.throws(
    () => loadConfig({ OPS_ENDPOINTS: 'ops-port' }),
    (e: unknown) => e instanceof ConfigError && /OPS_ENDPOINTS=ops-port: needs OPS_PORT/.test(e.message),
  );
  assert.equal(loadConfig({ OPS_ENDPOINTS: 'ops-port', OPS_PORT: '9100' }).OPS_ENDPOINTS, 'ops-port');
  assert.throws(
    () => loadConfig({ OPS_TOKEN: 'short' }),
    (e: unknown) => e instanceof ConfigError && /OPS_TOKEN=\(secret\)/.test(e.message),
  );
});

test('PORT is the api port unless API_PORT is set; both set must agree', () => {
  assert.equal(loadConfig({ PORT: '8080' }).API_PORT, 8080);
  assert.equal(loadConfig({ PORT: '8080', API_PORT: '8080' }).API_PORT, 8080);
  assert.throws(
    () => loadConfig({ PORT: '8080', API_PORT: '3000' }),
    (e: unknown) => e instanceof ConfigError && /PORT=8080 and API_PORT=3000 differ/.test(e.message),
  );
  assert.throws(() => loadConfig({ PORT: 'eighty' }), ConfigError);
});
