// What the console's template page shows besides the template itself: its versions with who
// made each (from the audit log, when the version came from the console or an import), a
// version's changes against the one before it, and a preview rendered for a channel, locale
// and sample params, checked against the configured providers' limits.
import type { Pool } from '../db/pools.js';
import { listVersionAuthors } from '../db/stores/template-history-store.js';
import { loadTemplateVersions } from '../db/stores/template-store.js';
import { channels, type Channel, type ChannelContent } from '../domain/notification.js';
import { ProblemError } from '../domain/problems.js';
import { countSmsSegments } from '../domain/sms-segments.js';
import { definitionChanges } from '../domain/template-changes.js';
import type { StoredTemplateVersion } from '../domain/template.js';
import { renderForChannels } from '../templates/template-preview.js';
import { consoleTime } from './console-views.js';

/** What the configured providers of a channel would refuse in this content (the api role's ingest check). */
export type ContentProblems = (
  channel: Channel,
  content: ChannelContent,
  data: Record<string, unknown> | null,
) => string[];

export interface ListedVersion {
  version: number;
  created: string;
  who: string;
}

/** Every version of a template, oldest first, with who made it when the audit log says. */
export async function versionHistory(
  pool: Pool,
  service: { id: number; name: string },
  key: string,
): Promise<ListedVersion[]> {
  return (await listVersionAuthors(pool, service, key)).map((v) => ({
    version: v.version,
    created: consoleTime(v.createdAt),
    who: v.author === '' ? '' : `${v.author} (${v.action.replace('template.', '')})`,
  }));
}

/** The version shown and the one before it (undefined for the first). */
export async function versionPair(
  pool: Pool,
  serviceId: number,
  key: string,
  version: number,
  versions: readonly ListedVersion[],
): Promise<{ shown?: StoredTemplateVersion; previous?: StoredTemplateVersion }> {
  const before = versions.filter((v) => v.version < version).at(-1)?.version;
  const refs = [version, ...(before === undefined ? [] : [before])].map((v) => ({
    serviceId,
    key,
    version: v,
  }));
  const loaded = await loadTemplateVersions(pool, refs);
  const find = (v: number | undefined) =>
    v === undefined ? undefined : [...loaded.values()].find((x) => x.version === v);
  return { shown: find(version), previous: find(before) };
}

/** What a version changed against the one before it: each part (and params, fallback locale) old → new. */
export function versionDiff(shown: StoredTemplateVersion, previous: StoredTemplateVersion | undefined) {
  // Category and lane belong to the template, not its versions.
  return definitionChanges(previous, shown)
    .filter((c) => c.field !== 'category' && c.field !== 'lane')
    .map((c) => ({
      where: c.field === 'variants' ? `${c.channel} / ${c.locale} / ${c.part}` : c.field,
      old: c.old ?? '',
      new: c.new ?? '',
    }));
}

export interface PreviewInput {
  channel: string;
  locale: string;
  /** Sample params as JSON text, as typed. */
  params: string;
}

export interface PreviewResult {
  locale: string;
  parts: { name: string; text: string }[];
  /** What a configured provider would refuse in the rendered content. */
  limits: string[];
  /** Facts about the rendered content, e.g. how many SMS segments it takes. */
  notes: string[];
  /** Why it could not be rendered (bad params JSON, a missing or ill-typed parameter, …). */
  errors: string[];
}

const failed = (errors: string[]): PreviewResult => ({
  locale: '',
  parts: [],
  limits: [],
  notes: [],
  errors,
});

function partsOf(channel: Channel, content: ChannelContent, html: string | undefined) {
  const names: Record<'title' | 'body', string> =
    channel === 'email'
      ? { title: 'subject', body: 'text' }
      : channel === 'sms' || channel === 'chat'
        ? { title: 'title', body: 'text' }
        : { title: 'title', body: 'body' };
  const parts: { name: string; text: string }[] = [];
  if (content.title !== undefined) parts.push({ name: names.title, text: content.title });
  if (content.body !== undefined) parts.push({ name: names.body, text: content.body });
  if (content.url !== undefined) parts.push({ name: 'url', text: content.url });
  if (html !== undefined) parts.push({ name: 'html', text: html });
  return parts;
}

/** Renders a version for a channel, locale and sample params, as a delivery would be. */
export async function previewOf(
  version: StoredTemplateVersion,
  input: PreviewInput,
  deps: { contentProblems: ContentProblems; templateRenderMs: number },
): Promise<PreviewResult> {
  let params: unknown;
  try {
    params = JSON.parse(input.params === '' ? '{}' : input.params);
  } catch {
    return failed(['The sample params are not valid JSON.']);
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params))
    return failed(['The sample params must be a JSON object, e.g. {"name": "Kim"}.']);
  const channel = channels.find((c) => c === input.channel);
  if (channel === undefined || version.variants[channel] === undefined)
    return failed([`This version has no ${input.channel} variant.`]);
  const locale = input.locale.trim() === '' ? version.fallbackLocale : input.locale.trim();
  let rendered;
  try {
    rendered = await renderForChannels(
      version,
      [channel],
      locale,
      params as Record<string, unknown>,
      deps.templateRenderMs,
    );
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const errors = error.errors?.map((e) => `${(e.field ?? '').replace('body/', '')}: ${e.message}`);
    return failed(errors ?? [error.message]);
  }
  const r = rendered.get(channel);
  if (r === undefined) return failed([`This version has no ${channel} variant.`]);
  const notes: string[] = [];
  if (channel === 'sms' && r.content.body !== undefined) {
    const sms = countSmsSegments(r.content.body);
    notes.push(
      `${String(sms.segments)} SMS segment(s): ${sms.encoding === 'gsm7' ? 'GSM 7-bit' : 'UCS-2'}, ${String(sms.units)} units`,
    );
  }
  return {
    locale: r.locale,
    parts: partsOf(channel, r.content, r.html),
    limits: deps.contentProblems(channel, r.content, null),
    notes,
    errors: [],
  };
}
