// With the embedded database, a "dev" service and its key make the first curl work. The key is
// kept in the data directory (mode 600) so it stays the same across restarts.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Pool } from '../db/pools.js';
import { createApiKey, ensureService, grantPermissions } from '../db/stores/api-key-store.js';
import { permissions } from '../domain/permissions.js';

export async function ensureDevApiKey(pool: Pool, dataDir: string): Promise<string> {
  const file = join(resolve(dataDir), 'dev-api-key');
  if (existsSync(file)) {
    const key = (await readFile(file, 'utf8')).trim();
    // A key kept from before permissions existed (or before new ones) gets every permission again.
    if (await grantPermissions(pool, key, permissions)) return key;
  }
  const serviceId = await ensureService(pool, 'dev');
  const key = await createApiKey(
    pool,
    serviceId,
    permissions,
    `development key ${randomBytes(3).toString('hex')}`,
  );
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}
