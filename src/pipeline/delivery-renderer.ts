// Turns a claimed batch into messages to send: loads the template versions the batch needs, then
// per delivery picks its provider chain and renders its message within the batch's render
// budget, or settles its result without a provider call (no device, no provider, a template that
// cannot render). Rendering reads the notification's content and version as claimed.
import type { Logger } from 'pino';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import type { ProviderRegistry } from '../channels/provider-registry.js';
import type { Pool } from '../db/pools.js';
import type { ClaimedDelivery } from '../db/stores/delivery-store.js';
import { contentFor, type Channel } from '../domain/notification.js';
import type { CallResult } from '../domain/outcome-policy.js';
import type { Metrics } from '../observability/metrics.js';
import type { BudgetedRenderer, RenderBudget } from '../templates/budgeted-renderer.js';
import type { RenderedVariant } from '../templates/template-renderer.js';
import { TemplateVersionCache } from '../templates/template-versions.js';
import type { TrackingLinks } from '../templates/tracking-links.js';
import { TrackingOptOuts } from './tracking-opt-outs.js';

/** A delivery ready to send through its provider chain, or one whose result needs no call. */
export type Prepared =
  | { kind: 'send'; message: RenderedMessage; chain: readonly ChannelProvider[] }
  | { kind: 'done'; result: CallResult };

export interface DeliveryRendererDeps {
  pool: Pool;
  providers: ProviderRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Renders templated deliveries within a budget per claimed batch and a cap per delivery. */
  renderer: BudgetedRenderer;
  /** The one-click unsubscribe link for a message (email, PUBLIC_URL set), or undefined. */
  unsubscribeUrl?: ((message: RenderedMessage) => string | undefined) | undefined;
  /** Email open and click tracking (TRACKING_URL set), or undefined. */
  tracking?: TrackingLinks | undefined;
}

export class DeliveryRenderer {
  private readonly templates = new TemplateVersionCache();
  private readonly optOuts: TrackingOptOuts;

  constructor(private readonly deps: DeliveryRendererDeps) {
    this.optOuts = new TrackingOptOuts(deps.pool);
  }

  /** A fresh render budget for one claimed batch. */
  budget(): RenderBudget {
    return this.deps.renderer.budget();
  }

  /** Loads the template versions a claimed batch renders with; a failure leaves those deliveries to retry. */
  async loadTemplates(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    try {
      await this.templates.prepare(this.deps.pool, deliveries);
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'loading template versions failed');
    }
    if (this.deps.tracking === undefined) return;
    try {
      await this.optOuts.refresh(deliveries.filter((d) => d.channel === 'email').map((d) => d.serviceId));
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'loading tracking opt-outs failed');
    }
  }

  /**
   * Renders the delivery's message (within the batch's render budget), or settles its result
   * without a provider call: no device, no provider, template not loaded or not renderable.
   */
  async prepare(delivery: ClaimedDelivery, budget: RenderBudget): Promise<Prepared> {
    const { deps } = this;
    const done = (result: CallResult): Prepared => ({ kind: 'done', result });
    const channel = delivery.channel as Channel;
    if (channel === 'push' && delivery.device === null)
      return done({
        kind: 'failed',
        reason: 'device deleted, disabled or moved to another user since the fan-out',
      });
    const chain = deps.providers.chainFor(channel, delivery.device);
    if (chain.length === 0) {
      const what =
        delivery.device === null
          ? `channel ${channel}`
          : `${delivery.device.platform} app ${delivery.device.appId}`;
      return done({ kind: 'failed', reason: `no provider configured for ${what}` });
    }
    const send = (rendered: RenderedVariant | undefined): Prepared => {
      const message = messageFor(delivery, rendered);
      message.unsubscribeUrl = deps.unsubscribeUrl?.(message);
      this.track(delivery, message);
      return { kind: 'send', message, chain };
    };
    const template = delivery.template ?? null;
    if (template === null) return send(undefined);
    const version = this.templates.get(delivery.serviceId, template.key, template.version);
    if (version === undefined) return done({ kind: 'retry', reason: 'template version could not be loaded' });
    const rendered = await deps.renderer.render(budget, {
      version,
      channel,
      locale: delivery.locale,
      params: template.params,
    });
    if (rendered.ok) return send(rendered.variant);
    switch (rendered.reason) {
      case 'budget':
        // Not this delivery's fault: back to the queue, its attempt not spent, due at once.
        deps.metrics.deliveriesDeferred.inc({ channel, reason: 'render_budget' });
        return done({ kind: 'deferred', reason: 'render_budget', delayMs: 0 });
      case 'limit':
        // A first miss of the cap may be a cold process or a GC pause: retry, with backoff. A
        // second is permanent: ingest rendered this version with these params within half the
        // cap, so a render over the whole cap twice is built to be slow (or the process is
        // starved, where more attempts add load); retrying would spend the cap every time.
        return done(
          rendered.settled
            ? { kind: 'failed', reason: `template_render_limit: ${rendered.message}` }
            : { kind: 'retry', reason: `template_render_limit: ${rendered.message}` },
        );
      case 'error':
        // Params are checked against the version at ingest, so this is rare; retrying cannot help.
        return done({ kind: 'failed', reason: `template: ${rendered.message}` });
    }
  }

  /**
   * An email's open pixel and click links (docs/tracking.md), unless its category or template
   * has tracking switched off, or the opt-outs could not be loaded (then nothing is tracked).
   */
  private track(delivery: ClaimedDelivery, message: RenderedMessage): void {
    const { tracking } = this.deps;
    if (tracking === undefined || message.channel !== 'email') return;
    if (!this.optOuts.tracks(delivery.serviceId, delivery.category, delivery.template?.key)) return;
    if (message.html !== undefined) message.html = tracking.trackHtml(message.html, message.deliveryId);
    else message.trackingPixelUrl = tracking.pixelUrl(message.deliveryId);
  }
}

/**
 * The message for a delivery: a templated notification's variant rendered with the version it
 * was accepted with, in the user's locale, else the notification's content for the channel.
 */
function messageFor(delivery: ClaimedDelivery, rendered: RenderedVariant | undefined): RenderedMessage {
  const channel = delivery.channel as Channel;
  return {
    deliveryId: delivery.id,
    notificationId: delivery.notificationId,
    version: delivery.version,
    channel,
    target: delivery.target,
    userId: delivery.userId,
    lane: delivery.lane,
    category: delivery.category,
    attempt: delivery.attempt,
    content: rendered?.content ?? contentFor(delivery.content, channel),
    ...(rendered?.html === undefined ? {} : { html: rendered.html }),
    data: delivery.data,
    signingSecrets: delivery.webhookSecrets,
    device: delivery.device,
  };
}
