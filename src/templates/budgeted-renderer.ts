// Render work per request, not only per item: an inbox page, a realtime batch or one item (query
// role) and a claimed batch (worker) each get a RenderBudget of wall-clock time. Items render
// one at a time with a per-item cap (liquidjs's own render limit), yielding to the event loop
// after each, so one hostile template costs its own items and never holds the process; once the
// budget is spent, the remaining templated items are not tried. A render that failed, or blew
// its cap twice, is remembered for a while, so the next read does not pay for it again.
import { createHash } from 'node:crypto';
import type { Channel } from '../domain/notification.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  nextTurn,
  renderVariant,
  TemplateRenderError,
  type RenderableVersion,
  type RenderedVariant,
  type RenderFailureReason,
} from './template-renderer.js';

/**
 * Why an item was not rendered: its render took longer than the per-item cap (`limit`), the
 * template fails with its params (`error`), or the request's budget was spent before its turn
 * (`budget`: it may render on the next read).
 */
export type NotRenderableReason = RenderFailureReason | 'budget';

export type RenderResult =
  | { ok: true; variant: RenderedVariant }
  | {
      ok: false;
      reason: NotRenderableReason;
      /** The template's failure (template text, never params), e.g. for a delivery's detail. */
      message: string;
      /**
       * true: this render fails every time for now (an error, or a second miss of the full
       * cap) and is not tried again while remembered; false: a later try may succeed.
       */
      settled: boolean;
    };

export interface RenderLimits {
  /** Wall-clock render time one request or claimed batch may spend. */
  budgetMs: number;
  /** Wall-clock render time one item (one variant, all its parts) may take. */
  itemMs: number;
}

/** What one request may still spend; create one per request with BudgetedRenderer.budget(). */
export class RenderBudget {
  private readonly deadline: number;

  constructor(
    private readonly limits: RenderLimits,
    private readonly now: () => number,
  ) {
    this.deadline = now() + limits.budgetMs;
  }

  /** Milliseconds the next item may render: the per-item cap, or less if less is left; 0 when spent. */
  nextItemMs(): number {
    return Math.max(0, Math.min(this.limits.itemMs, this.deadline - this.now()));
  }
}

export interface BudgetedRendererOptions extends RenderLimits {
  metrics: Metrics;
  logger: Logger;
  /** How long a failed render is remembered (default 10 minutes). */
  rememberMs?: number;
  /** Most failed renders remembered (default 10,000; the oldest goes first). */
  maxRemembered?: number;
  /** A monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** One item to render: a version's channel variant for a user's locale with its params. */
export interface RenderTarget {
  version: RenderableVersion;
  channel: Channel;
  locale: string | null | undefined;
  params: Record<string, unknown>;
}

const spent = 'the render budget of this request was spent before its turn';

/** A render that failed: `misses` of the full cap so far; `settled` ones are not tried until `until`. */
interface Failure {
  reason: RenderFailureReason;
  message: string;
  misses: number;
  settled: boolean;
  until: number;
}

/**
 * Misses of the full cap before a render is taken to be slow, not unlucky: one miss can be a
 * cold process (code not yet compiled) or a garbage-collection pause.
 */
const missesToSettle = 2;

/** One per process, shared by the query role's inbox and the worker's dispatcher. */
export class BudgetedRenderer {
  private readonly limits: RenderLimits;
  private readonly failed = new Map<string, Failure>();
  private readonly now: () => number;
  private readonly rememberMs: number;
  private readonly maxRemembered: number;

  constructor(private readonly options: BudgetedRendererOptions) {
    // An item cap above the budget could never be used in full.
    this.limits = { budgetMs: options.budgetMs, itemMs: Math.min(options.itemMs, options.budgetMs) };
    this.now = options.now ?? (() => performance.now());
    this.rememberMs = options.rememberMs ?? 600_000;
    this.maxRemembered = options.maxRemembered ?? 10_000;
  }

  /** A fresh budget for one request or claimed batch. */
  budget(): RenderBudget {
    return new RenderBudget(this.limits, this.now);
  }

  /**
   * Renders one item within `budget`, and yields to the event loop after it. A render that
   * fails, or misses the full cap a second time, is remembered as settled, logged once and not
   * tried again for `rememberMs`; a first miss is only counted, so the next read tries once more.
   * A render cut short by the budget (less than the full cap left) says nothing about the
   * template: it is `budget`. Never throws TemplateRenderError.
   */
  async render(budget: RenderBudget, target: RenderTarget): Promise<RenderResult> {
    const key = renderKey(target);
    let known = this.failed.get(key);
    if (known !== undefined && known.until <= this.now()) {
      this.failed.delete(key);
      known = undefined;
    }
    if (known?.settled === true) return this.notRenderable(known.reason, known.message, true);
    const limitMs = budget.nextItemMs();
    if (limitMs <= 0) return this.notRenderable('budget', spent, false);
    try {
      const variant = renderVariant(target.version, target.channel, target.locale, target.params, limitMs);
      if (known !== undefined) this.failed.delete(key);
      await nextTurn();
      return { ok: true, variant };
    } catch (error) {
      if (!(error instanceof TemplateRenderError)) throw error;
      await nextTurn();
      if (error.reason === 'limit' && limitMs < this.limits.itemMs)
        return this.notRenderable('budget', spent, false);
      const misses = (known?.misses ?? 0) + 1;
      const settled = error.reason === 'error' || misses >= missesToSettle;
      this.remember(key, { reason: error.reason, message: error.message, misses, settled, until: 0 });
      if (settled)
        // Once per render, with what identifies the template; never the params (user content).
        this.options.logger.warn(
          {
            serviceId: target.version.serviceId,
            template: target.version.key,
            version: target.version.version,
            channel: target.channel,
            reason: error.reason,
            limitMs,
          },
          'template not renderable; not tried again for a while',
        );
      return this.notRenderable(error.reason, error.message, settled);
    }
  }

  private notRenderable(reason: NotRenderableReason, message: string, settled: boolean): RenderResult {
    this.options.metrics.templateRenderFailures.inc({ reason });
    return { ok: false, reason, message, settled };
  }

  private remember(key: string, failure: Failure): void {
    this.failed.delete(key);
    if (this.failed.size >= this.maxRemembered) {
      const oldest = this.failed.keys().next();
      if (oldest.done !== true) this.failed.delete(oldest.value);
    }
    this.failed.set(key, { ...failure, until: this.now() + this.rememberMs });
  }
}

/**
 * The same version, channel, locale and params render the same way: that is what is
 * remembered, so other notifications of the same template (other params) still render.
 */
function renderKey(target: RenderTarget): string {
  const { version } = target;
  const params = createHash('sha256').update(JSON.stringify(target.params)).digest('base64url');
  return [version.serviceId, version.key, version.version, target.channel, target.locale ?? '', params].join(
    '\u0000',
  );
}
