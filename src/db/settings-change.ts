// Payloads of the herald_settings NOTIFY. Every change to preferences, category settings,
// templates, rate budgets or the lane settings sends one in its own transaction, so each process's settings cache
// (src/pipeline/settings-cache.ts) drops the entry exactly when the change commits.
import type { PoolClient } from './pools.js';
import { wakeChannels } from './wake-notifier.js';

/** Payloads of the herald_settings NOTIFY: which cache entry changed. '' means everything. */
export const settingsChange = {
  user: (userId: string) => `user:${userId}`,
  category: (serviceId: number, category: string) => `category:${String(serviceId)}:${category}`,
  template: (serviceId: number, key: string) => `template:${String(serviceId)}:${key}`,
  budget: (serviceId: number, name: string) => `budget:${String(serviceId)}:${name}`,
  /** The lane settings row (src/db/stores/lane-settings-store.ts): the settings cache keeps nothing of it. */
  lanes: 'lanes',
};

export async function notifySettingsChanged(client: PoolClient, payloads: string[]): Promise<void> {
  // Inside the transaction: delivered to listeners exactly when the change commits.
  await client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [
    wakeChannels.settings,
    payloads,
  ]);
}
