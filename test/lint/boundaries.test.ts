// The layering of src/ is enforced by lint (eslint.boundaries.js): fixtures that import across a
// boundary must fail, and the imports the layering allows must pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { boundaries } from '../../eslint.boundaries.js';
import { packageRoot } from '../../src/db/package-root.js';

const eslint = new ESLint({
  cwd: packageRoot,
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...boundaries],
});

/** Whether lint refuses `from` importing `specifier` (the file need not exist). */
async function refused(from: string, specifier: string): Promise<boolean> {
  const [result] = await eslint.lintText(`import '${specifier}';\n`, { filePath: join(packageRoot, from) });
  assert.ok(result !== undefined);
  assert.deepEqual(
    result.messages.filter((m) => m.ruleId !== 'no-restricted-imports'),
    [],
    `${from}: other problems`,
  );
  return result.messages.length > 0;
}

const backEdges: [string, string][] = [
  ['src/domain/fixture.ts', 'node:fs'],
  ['src/domain/fixture.ts', '../db/pools.js'],
  ['src/config/fixture.ts', '../db/pools.js'],
  ['src/observability/fixture.ts', '../db/migrate.js'],
  ['src/db/fixture.ts', '../templates/template-renderer.js'],
  ['src/db/stores/fixture.ts', '../../channels/channel-provider.js'],
  ['src/http/fixture.ts', '../db/stores/api-key-store.js'],
  ['src/channels/fixture.ts', '../pipeline/provider-guard.js'],
  ['src/channels/webhook/fixture.ts', '../../db/pools.js'],
  ['src/channels/webhook/fixture.ts', '../slack/slack-provider.js'],
  ['src/templates/fixture.ts', '../api/templates/template-routes.js'],
  ['src/query/fixture.ts', '../pipeline/dispatcher.js'],
  ['src/query/fixture.ts', '../api/users/user-routes.js'],
  ['src/api/fixture.ts', '../query/user-auth.js'],
  ['src/api/users/fixture.ts', '../../query/user-auth.js'],
  ['src/api/users/fixture.ts', '../templates/template-routes.js'],
  ['src/api/fixture.ts', '../channels/apns/apns-provider.js'],
  ['src/preferences/fixture.ts', '../api/users/user-routes.js'],
  ['src/preferences/fixture.ts', '../query/user-auth.js'],
  ['src/pipeline/fixture.ts', '../composition/create-herald.js'],
  ['src/scheduler/fixture.ts', '../pipeline/dispatcher.js'],
  ['src/console/fixture.ts', '../api/users/user-routes.js'],
  ['src/console/fixture.ts', '../query/user-auth.js'],
];

const allowed: [string, string][] = [
  ['src/domain/fixture.ts', './notification.js'],
  ['src/db/stores/fixture.ts', '../../domain/device.js'],
  ['src/channels/webhook/fixture.ts', '../channel-provider.js'],
  ['src/channels/webhook/fixture.ts', './webhook-signature.js'],
  ['src/channels/fixture.ts', './apns/apns-provider.js'],
  ['src/api/fixture.ts', '../channels/channel-provider.js'],
  ['src/api/users/fixture.ts', '../check-target-url.js'],
  ['src/api/users/fixture.ts', '../../preferences/user-preference-routes.js'],
  ['src/query/fixture.ts', '../preferences/user-preference-routes.js'],
  ['src/query/fixture.ts', '../db/wake-listener.js'],
  ['src/scheduler/fixture.ts', '../archive/lifecycle.js'],
  ['src/console/fixture.ts', '../db/stores/audit-store.js'],
  ['src/composition/fixture.ts', '../channels/apns/apns-provider.js'],
];

test('an import across a boundary fails lint', async () => {
  for (const [from, specifier] of backEdges)
    assert.equal(await refused(from, specifier), true, `${from} importing ${specifier} passed lint`);
});

test('the imports the layering allows pass lint', async () => {
  for (const [from, specifier] of allowed)
    assert.equal(await refused(from, specifier), false, `${from} importing ${specifier} failed lint`);
});

test('every folder of src/ has its place in the layering', async () => {
  const { allowedImports } = await import('../../eslint.boundaries.js');
  const { readdirSync } = await import('node:fs');
  const folders = readdirSync(join(packageRoot, 'src'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  assert.deepEqual(Object.keys(allowedImports).sort(), folders);
});
