// Recurring schedules: a five-field cron expression evaluated in a time zone by cron-parser
// (DST-correct through its zone database; no time arithmetic here), and the missed-run policy.
import { CronExpressionParser } from 'cron-parser';
import { ProblemError } from './problems.js';

/**
 * Checks a cron expression: exactly five fields (minute, hour, day of month, month, day of
 * week), as cron-parser reads them; macros (@daily) and randomized values (H) are refused.
 * Throws cron_invalid.
 */
export function checkCron(expression: string, timeZone = 'UTC'): void {
  const fields = expression.trim().split(/\s+/);
  const invalid = (message: string) =>
    new ProblemError('cron_invalid', message, [{ field: 'body/cron', message }]);
  if (fields.length !== 5) throw invalid('A cron expression has five fields: minute hour day month weekday.');
  if (expression.includes('@') || /(^|[^a-z])h([^a-z]|$)/i.test(expression))
    throw invalid('Macros (@daily) and randomized values (H) are not supported.');
  try {
    CronExpressionParser.parse(expression, { tz: timeZone }).next();
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : 'not a cron expression');
  }
}

/** Whether a name is an IANA time zone this runtime knows. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The first occurrence strictly after `after`, in `timeZone`. */
export function nextOccurrence(expression: string, timeZone: string, after: Date): Date {
  return CronExpressionParser.parse(expression, { tz: timeZone, currentDate: after }).next().toDate();
}

/**
 * What to do with a due occurrence at `now`. Of the occurrences from `due` up to `now`, only
 * the latest one within `graceMs` of now is sent (a scheduler that was down sends at most one
 * late occurrence, and none older than the grace period); the next run is the first
 * occurrence after now.
 */
export function settleDueRun(
  expression: string,
  timeZone: string,
  due: Date,
  now: Date,
  graceMs: number,
): { send: Date | undefined; next: Date } {
  const from = Math.max(due.getTime(), now.getTime() - graceMs);
  // `due` is an occurrence as the library computed it (a time in a DST gap is moved past the
  // gap, and iterating from later would not find it again), so it counts as one itself.
  const dueInGrace = due.getTime() >= from;
  let send: Date | undefined = dueInGrace && due <= now ? due : undefined;
  // Later occurrences up to now; bounded by the grace period.
  for (let at = nextOccurrence(expression, timeZone, dueInGrace ? due : new Date(from - 1)); at <= now;) {
    send = at;
    at = nextOccurrence(expression, timeZone, at);
  }
  return { send, next: nextOccurrence(expression, timeZone, now) };
}
