// Per-process cache of users' preferences and services' category settings (for the fan-out
// stage) and of templates' current versions and rate budgets' ids (for ingest). An entry is
// dropped when the herald_settings NOTIFY naming it arrives (sent in the transaction that
// changed it, so at its commit), everything is dropped after a reconnect, and nothing is cached
// while the listener is disconnected. A TTL with jitter bounds what a lost hint could leave
// behind, without a cohort of keys expiring at once.
import type { Pool, PoolClient } from '../db/pools.js';
import { findTemplateVersion } from '../db/stores/template-store.js';
import { findRateBudgetId } from '../db/stores/rate-budget-store.js';
import type { StoredTemplateVersion } from '../domain/template.js';
import { loadCategorySettings } from '../db/stores/category-store.js';
import { loadPreferences } from '../db/stores/preference-store.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { settingsChange } from '../db/settings-change.js';
import { categoryKey, type CategorySettings, type Preference } from '../domain/preferences.js';
import type { WakeListener } from '../db/wake-listener.js';

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * How long an entry lives without a hint: a lost NOTIFY leaves a stale entry at most a minute;
 * the jitter keeps a cohort of keys loaded together from expiring together.
 */
export const settingsCacheLifetime = { ttlMs: 60_000, jitterMs: 10_000 } as const;

export interface SettingsCacheOptions {
  ttlMs: number;
  jitterMs: number;
  /** Entries per map; the oldest go first when full. */
  maxEntries: number;
  now: () => number;
  random: () => number;
}

export class SettingsCache {
  private readonly preferences = new Map<string, Entry<Preference[]>>();
  /** A category without a row is cached as null (negative result). */
  private readonly categories = new Map<string, Entry<CategorySettings | null>>();
  /** A service's template by key: its current version, or null for none. */
  private readonly templates = new Map<string, Entry<StoredTemplateVersion | null>>();
  /** A service's rate budget by name: its id, or null for none. */
  private readonly budgets = new Map<string, Entry<number | null>>();
  /**
   * Bumped by every invalidation. A load that started before an invalidation does not store
   * what it read: it may be the value the invalidation was about.
   */
  private generation = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly listener: WakeListener,
    private readonly options: SettingsCacheOptions,
  ) {
    listener.subscribe(wakeChannels.settings, (payload) => this.invalidate(payload));
  }

  /**
   * Applies a herald_settings payload: `user:<id>`, `category:<service>:<category>`,
   * `template:<service>:<key>`, `budget:<service>:<name>`, or '' (all).
   */
  invalidate(payload: string): void {
    if (payload === settingsChange.lanes) return; // not cached here (src/pipeline/lane-settings.ts)
    this.generation += 1;
    if (payload.startsWith('user:')) this.preferences.delete(payload.slice('user:'.length));
    else if (payload.startsWith('category:')) this.categories.delete(payload.slice('category:'.length));
    else if (payload.startsWith('template:')) this.templates.delete(payload.slice('template:'.length));
    else if (payload.startsWith('budget:')) this.budgets.delete(payload.slice('budget:'.length));
    else {
      this.preferences.clear();
      this.categories.clear();
      this.templates.clear();
      this.budgets.clear();
    }
  }

  /** The current version of a service's template; undefined if there is none. */
  async currentTemplate(
    pool: Pool,
    serviceId: number,
    key: string,
  ): Promise<StoredTemplateVersion | undefined> {
    return this.cachedOne(this.templates, `${String(serviceId)}:${key}`, () =>
      findTemplateVersion(pool, serviceId, key),
    );
  }

  /**
   * The id of a service's rate budget; undefined if it has none of that name. A cached "none"
   * is used only when `trustAbsent`: a send naming a budget that another process created a
   * moment ago (its NOTIFY not yet here) reads it again rather than being refused. A cached id
   * of a budget deleted since is harmless: its recipients are queued unpaced (migration 0031).
   */
  async rateBudgetId(
    pool: Pool,
    serviceId: number,
    name: string,
    trustAbsent: boolean,
  ): Promise<number | undefined> {
    const cacheKey = `${String(serviceId)}:${name}`;
    if (!trustAbsent && this.budgets.get(cacheKey)?.value === null) this.budgets.delete(cacheKey);
    return this.cachedOne(this.budgets, cacheKey, () => findRateBudgetId(pool, serviceId, name));
  }

  async preferencesFor(client: PoolClient, userIds: readonly string[]): Promise<Map<string, Preference[]>> {
    return this.cached(this.preferences, userIds, (missing) => loadPreferences(client, missing), []);
  }

  async categoriesFor(
    client: PoolClient,
    keys: readonly { serviceId: number; category: string }[],
  ): Promise<Map<string, CategorySettings | null>> {
    const byKey = new Map(keys.map((k) => [categoryKey(k.serviceId, k.category), k]));
    return this.cached(
      this.categories,
      [...byKey.keys()],
      async (missing) => {
        const loaded = await loadCategorySettings(
          client,
          missing.flatMap((k) => byKey.get(k) ?? []),
        );
        return new Map(missing.map((k) => [k, loaded.get(k) ?? null]));
      },
      null,
    );
  }

  /** One key's value, undefined (cached as null) when the load finds none. */
  private async cachedOne<T>(
    store: Map<string, Entry<T | null>>,
    key: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const found = await this.cached(store, [key], async () => new Map([[key, (await load()) ?? null]]), null);
    return found.get(key) ?? undefined;
  }

  private async cached<T>(
    store: Map<string, Entry<T>>,
    keys: readonly string[],
    load: (missing: string[]) => Promise<Map<string, T>>,
    absent: T,
  ): Promise<Map<string, T>> {
    const now = this.options.now();
    const result = new Map<string, T>();
    const missing: string[] = [];
    for (const key of new Set(keys)) {
      const entry = store.get(key);
      if (entry !== undefined && entry.expiresAt > now) {
        result.set(key, entry.value);
        this.hits += 1;
      } else missing.push(key);
    }
    if (missing.length === 0) return result;
    this.misses += missing.length;
    const generation = this.generation;
    const loaded = await load(missing);
    const storable = generation === this.generation && this.listener.listening;
    for (const key of missing) {
      const value = loaded.get(key) ?? absent;
      result.set(key, value);
      if (storable) {
        const expiresAt =
          now + this.options.ttlMs + Math.floor(this.options.random() * this.options.jitterMs);
        if (store.size >= this.options.maxEntries) {
          const oldest = store.keys().next();
          if (oldest.done !== true) store.delete(oldest.value);
        }
        store.set(key, { value, expiresAt });
      }
    }
    return result;
  }
}
