// Job: warn when the PostgreSQL server runs without the settings Herald's tables rely on.
// Deliveries, recipients and delivery events are written and updated all day; without autovacuum
// their dead row versions are never reclaimed, the tables and their indexes grow without bound
// and the claim statements slow down (docs/operations.md#postgresql-settings).
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';

export const serverSettingsCheckIntervalMs = 3_600_000;

/** The settings checked, with the value Herald needs and why. */
const needed: readonly { name: string; value: string; reason: string }[] = [
  { name: 'autovacuum', value: 'on', reason: 'dead row versions of the hot tables are never reclaimed' },
  { name: 'track_counts', value: 'on', reason: 'autovacuum cannot tell which tables need it' },
];

/** What is off, from the server's values by name: one line per setting. */
export function settingProblems(values: ReadonlyMap<string, string>): string[] {
  return needed
    .filter((s) => values.get(s.name) !== s.value)
    .map((s) => `${s.name} is ${values.get(s.name) ?? 'unknown'}, should be ${s.value}: ${s.reason}`);
}

export function serverSettingsCheck(deps: { pool: Pool; logger: Logger }): () => Promise<void> {
  return async () => {
    const result = await deps.pool.query<{ name: string; setting: string }>(
      'SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])',
      [needed.map((s) => s.name)],
    );
    const problems = settingProblems(new Map(result.rows.map((r) => [r.name, r.setting])));
    if (problems.length > 0) deps.logger.warn({ problems }, 'PostgreSQL settings Herald needs are off');
  };
}
