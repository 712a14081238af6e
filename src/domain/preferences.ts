// Whether, and when, one user gets a notification on one channel: opt-in/opt-out preferences,
// per-category defaults, the no-marketing switch, critical categories, quiet hours in the
// user's time zone and frequency caps. Pure: the clock and cap usage are passed in.
import type { Channel, Lane } from './notification.js';

export const capPeriods = ['day', 'hour'] as const;
export type CapPeriod = (typeof capPeriods)[number];
export const capOverflows = ['suppress', 'defer'] as const;
export type CapOverflow = (typeof capOverflows)[number];

/** At most `limit` notifications of a category per channel x lane in each local day or hour. */
export interface FrequencyCap {
  limit: number;
  per: CapPeriod;
  over: CapOverflow;
}

/** A calling service's settings for one of its categories (the operator's). */
export interface CategorySettings {
  /** Security, legal: always delivered, preferences, quiet hours and caps do not apply. */
  critical: boolean;
  /** Subject to the user's no-marketing switch. */
  marketing: boolean;
  /** Whether a user with no preference of their own is opted in, per channel (absent: yes). */
  defaults: Partial<Record<Channel, boolean>>;
  caps: Partial<Record<Channel, Partial<Record<Lane, FrequencyCap>>>>;
}

/**
 * Why these category settings cannot be saved, or undefined: a critical category is always
 * delivered, so the no-marketing switch could never apply to it.
 */
export function categorySettingsProblem(settings: {
  critical: boolean;
  marketing: boolean;
}): string | undefined {
  return settings.critical && settings.marketing ? 'must be false when critical is true' : undefined;
}

/** How category settings are keyed: one service's category. */
export function categoryKey(serviceId: number, category: string): string {
  return `${String(serviceId)}:${category}`;
}

export const anyChannel = '*';
export const anyCategory = '*';

export interface Preference {
  channel: Channel | typeof anyChannel;
  category: string;
  enabled: boolean;
}

/** Quiet hours as minutes after local midnight; start > end crosses midnight. */
export interface QuietHours {
  startMinutes: number;
  endMinutes: number;
}

export interface RecipientSettings {
  timeZone: string;
  noMarketing: boolean;
  quietHours: QuietHours | null;
  preferences: readonly Preference[];
}

export type SuppressReason = 'preference' | 'marketing' | 'cap';
export type DeferReason = 'quiet_hours' | 'cap';

export type DeliveryDecision =
  | { kind: 'deliver'; runAt: Date; capBucket?: number }
  | { kind: 'defer'; runAt: Date; reason: DeferReason; detail: string; capBucket?: number }
  | { kind: 'suppress'; reason: SuppressReason; detail: string };

export interface DecisionInput {
  channel: Channel;
  category: string;
  lane: Lane;
  now: Date;
  settings: CategorySettings | undefined;
  recipient: RecipientSettings;
  /**
   * Notifications of this user, category, channel and lane already counted in the cap window
   * starting at `bucketStartMs` (from the deliveries table plus this batch).
   */
  capUsage: (bucketStartMs: number) => number;
}

/** How many windows ahead a cap may defer before the delivery is suppressed instead. */
export const capDeferHorizon = 31;

/**
 * The preference that applies, most specific first: channel+category, channel+'*',
 * '*'+category, '*'+'*'. Undefined when the user has none.
 */
export function matchingPreference(
  preferences: readonly Preference[],
  channel: Channel,
  category: string,
): Preference | undefined {
  const order: [Channel | typeof anyChannel, string][] = [
    [channel, category],
    [channel, anyCategory],
    [anyChannel, category],
    [anyChannel, anyCategory],
  ];
  for (const [c, k] of order) {
    const found = preferences.find((p) => p.channel === c && p.category === k);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function decideDelivery(input: DecisionInput): DeliveryDecision {
  const { channel, category, lane, settings, recipient } = input;
  if (settings?.critical === true) return { kind: 'deliver', runAt: input.now };
  if (settings?.marketing === true && recipient.noMarketing)
    return { kind: 'suppress', reason: 'marketing', detail: 'preference: no marketing' };
  const preference = matchingPreference(recipient.preferences, channel, category);
  if (preference !== undefined && !preference.enabled)
    return {
      kind: 'suppress',
      reason: 'preference',
      detail: `preference: opted out of ${preference.channel}/${preference.category}`,
    };
  if (preference === undefined && settings?.defaults[channel] === false)
    return {
      kind: 'suppress',
      reason: 'preference',
      detail: `preference: ${channel} is off by default for ${category}`,
    };
  // The inbox is silent and written at fan-out: quiet hours and caps apply to the other channels.
  if (channel === 'in_app') return { kind: 'deliver', runAt: input.now };

  const quiet = (at: Date): Date =>
    lane === 'bulk' && recipient.quietHours !== null
      ? (quietHoursEnd(at, recipient.quietHours, recipient.timeZone) ?? at)
      : at;
  let runAt = quiet(input.now);
  const quietDeferred = runAt.getTime() !== input.now.getTime();
  const cap = settings?.caps[channel]?.[lane];
  if (cap === undefined) {
    return quietDeferred
      ? {
          kind: 'defer',
          runAt,
          reason: 'quiet_hours',
          detail: `deferred: quiet hours until ${runAt.toISOString()}`,
        }
      : { kind: 'deliver', runAt };
  }
  const capText = `cap: ${String(cap.limit)} ${lane} ${channel} per ${cap.per}`;
  for (let i = 0; i < capDeferHorizon; i += 1) {
    const bucket = capWindowStart(runAt, cap.per, recipient.timeZone);
    if (input.capUsage(bucket.getTime()) < cap.limit) {
      if (i === 0 && !quietDeferred) return { kind: 'deliver', runAt, capBucket: bucket.getTime() };
      const reason: DeferReason = i === 0 ? 'quiet_hours' : 'cap';
      const detail =
        reason === 'quiet_hours'
          ? `deferred: quiet hours until ${runAt.toISOString()}`
          : `deferred: ${capText} until ${runAt.toISOString()}`;
      return { kind: 'defer', runAt, reason, detail, capBucket: bucket.getTime() };
    }
    if (cap.over === 'suppress') return { kind: 'suppress', reason: 'cap', detail: capText };
    // The next window, moved past quiet hours (a day window starts at local midnight).
    runAt = quiet(nextCapWindow(bucket, cap.per, recipient.timeZone));
  }
  return {
    kind: 'suppress',
    reason: 'cap',
    detail: `${capText} (no room in the next ${String(capDeferHorizon)})`,
  };
}

// ---- time zones (Intl only: the domain has no date library) ----

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function localTime(at: Date, timeZone: string): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(at)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts['year'] ?? 1970,
    month: parts['month'] ?? 1,
    day: parts['day'] ?? 1,
    hour: parts['hour'] ?? 0,
    minute: parts['minute'] ?? 0,
  };
}

/** Offset of the zone from UTC at `ms`, in ms (whole minutes). */
function offsetMs(ms: number, timeZone: string): number {
  const at = Math.floor(ms / 60_000) * 60_000;
  const l = localTime(new Date(at), timeZone);
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute) - at;
}

/**
 * The instant a local wall-clock time happens in a zone. A time that occurs twice (clocks
 * turned back) gives the earlier; a time that does not occur (clocks turned forward) is moved
 * forward by the gap, as Temporal's 'compatible' disambiguation does.
 */
export function zonedInstant(
  date: { year: number; month: number; day: number },
  minutes: number,
  timeZone: string,
): Date {
  const wall = Date.UTC(date.year, date.month - 1, date.day, 0, minutes);
  const before = offsetMs(wall - 86_400_000, timeZone);
  const after = offsetMs(wall + 86_400_000, timeZone);
  const candidates = [wall - before, wall - after].filter((t) => offsetMs(t, timeZone) === wall - t);
  if (candidates.length > 0) return new Date(Math.min(...candidates));
  return new Date(wall - before);
}

function addDays(date: { year: number; month: number; day: number }, days: number) {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

export function isQuietHour(minutes: number, quiet: QuietHours): boolean {
  const { startMinutes: s, endMinutes: e } = quiet;
  if (s === e) return false;
  return s < e ? minutes >= s && minutes < e : minutes >= s || minutes < e;
}

/** When the quiet hours that `at` falls in end; undefined when `at` is not in quiet hours. */
export function quietHoursEnd(at: Date, quiet: QuietHours, timeZone: string): Date | undefined {
  const local = localTime(at, timeZone);
  const minutes = local.hour * 60 + local.minute;
  if (!isQuietHour(minutes, quiet)) return undefined;
  // Before midnight in a window that crosses it: the window ends tomorrow.
  const endsTomorrow = quiet.startMinutes > quiet.endMinutes && minutes >= quiet.startMinutes;
  const end = zonedInstant(endsTomorrow ? addDays(local, 1) : local, quiet.endMinutes, timeZone);
  // A DST jump can make the computed end precede `at` (end inside a skipped hour); never go back.
  return end.getTime() > at.getTime() ? end : new Date(at.getTime() + 60_000);
}

/** Start of the local day or hour `at` falls in (the cap window). */
export function capWindowStart(at: Date, per: CapPeriod, timeZone: string): Date {
  const local = localTime(at, timeZone);
  if (per === 'day') return zonedInstant(local, 0, timeZone);
  // Hours: truncate the instant itself, so a repeated local hour (clocks turned back) is two windows.
  const offset = offsetMs(at.getTime(), timeZone);
  return new Date(Math.floor((at.getTime() + offset) / 3_600_000) * 3_600_000 - offset);
}

export function nextCapWindow(windowStart: Date, per: CapPeriod, timeZone: string): Date {
  if (per === 'hour') return new Date(windowStart.getTime() + 3_600_000);
  return zonedInstant(addDays(localTime(windowStart, timeZone), 1), 0, timeZone);
}

/** "HH:MM" → minutes after midnight; undefined when malformed. */
export function parseLocalTime(text: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (m === null) return undefined;
  return Number(m[1]) * 60 + Number(m[2]);
}

export function formatLocalTime(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}
