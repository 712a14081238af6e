// Engagement on the query role (docs/tracking.md): the email open pixel and click-through links
// (signed links, no login), and opens and clicks that apps and the inbox report for the user
// (a user token for that user, or a key with the inbox permission for its own notifications).
// Each event is recorded once; a repeat changes nothing and is answered the same.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import type { Metrics } from '../observability/metrics.js';
import { recordEngagement, type EngagementReport } from '../db/stores/engagement-store.js';
import { isPrefetchUserAgent, type EngagementKind } from '../domain/engagement.js';
import { uuidPatternText } from '../domain/ids.js';
import { ProblemError } from '../domain/problems.js';
import { Answer, answers, Timestamp } from '../http/openapi-contract.js';
import { trackingPixel, type TrackingLinks } from '../templates/tracking-links.js';
import { emptyBodyAllowed, NotificationId, scopeOf, UserId } from './inbox-request.js';
import { inboxCallerOf, requireInboxAccess, type InboxAccess } from './user-auth.js';

const TokenParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) });

const ReportBody = Type.Object(
  {
    occurred_at: Type.Optional(
      Timestamp('When the user opened or clicked, as the app saw it; the arrival time when absent.'),
    ),
  },
  { additionalProperties: false },
);

const Recorded = Answer({
  recorded: Type.Boolean({ description: 'false: this was reported before; nothing changed.' }),
});

export interface EngagementRouteDeps {
  pool: Pool;
  access: InboxAccess;
  /** Undefined when TRACKING_URL is unset: the pixel and links are not served. */
  links: TrackingLinks | undefined;
  /** An email open this soon after the send is flagged as a prefetch (TRACKING_PREFETCH_SECONDS). */
  prefetchWindowSeconds: number;
  metrics: Pick<Metrics, 'engagementReports'>;
  now: () => Date;
}

/** A reported time more than this far in the future is refused (a clock off by minutes is not). */
const maxFutureSkewMs = 5 * 60_000;

export function engagementRoutes(deps: EngagementRouteDeps): FastifyPluginAsync {
  const guard = requireInboxAccess(deps.access, ['inbox']);
  const record = async (report: EngagementReport): Promise<{ recorded: boolean }> => {
    const result = await recordEngagement(deps.pool, report);
    deps.metrics.engagementReports.inc({ kind: report.kind, source: 'app', result });
    if (result === 'not_found') throw new ProblemError('not_found', 'No such delivery for this user.');
    return { recorded: result === 'recorded' };
  };
  const occurredAt = (given: string | undefined): Date | undefined => {
    if (given === undefined) return undefined;
    const at = new Date(given);
    // The schema's date-time format admits a leap second (…:60), which Date cannot hold.
    if (Number.isNaN(at.getTime()))
      throw new ProblemError('validation_failed', 'occurred_at is not a time.', [
        { field: 'body/occurred_at', message: 'must be a valid date-time' },
      ]);
    if (at.getTime() > deps.now().getTime() + maxFutureSkewMs)
      throw new ProblemError('validation_failed', 'occurred_at is in the future.', [
        { field: 'body/occurred_at', message: 'must not be in the future' },
      ]);
    return at;
  };

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    for (const kind of ['opened', 'clicked'] as const satisfies readonly EngagementKind[]) {
      app.post(
        `/v1/users/:userId/deliveries/:deliveryId/${kind}`,
        {
          onRequest: guard,
          preValidation: emptyBodyAllowed,
          schema: {
            summary: `Report that the user ${kind} a delivery (push, in-app, any channel)`,
            operationId: kind === 'opened' ? 'reportDeliveryOpened' : 'reportDeliveryClicked',
            tags: ['engagement'],
            params: Type.Object({ userId: UserId, deliveryId: Type.String({ pattern: uuidPatternText }) }),
            body: ReportBody,
            response: answers({ 200: Recorded }),
          },
        },
        async (request) => {
          const { userId, deliveryId } = request.params;
          return record({
            delivery: { id: deliveryId },
            kind,
            userId,
            scope: scopeOf(inboxCallerOf(request)),
            occurredAt: occurredAt(request.body.occurred_at),
          });
        },
      );
    }

    app.post(
      '/v1/users/:userId/inbox/:notificationId/clicked',
      {
        onRequest: guard,
        preValidation: emptyBodyAllowed,
        schema: {
          summary: 'Report that the user clicked an item of the inbox',
          operationId: 'reportInboxClicked',
          tags: ['engagement'],
          params: Type.Object({ userId: UserId, notificationId: NotificationId }),
          body: ReportBody,
          response: answers({ 200: Recorded }),
        },
      },
      async (request) => {
        const { userId, notificationId } = request.params;
        return record({
          delivery: { inApp: { notificationId, userId } },
          kind: 'clicked',
          scope: scopeOf(inboxCallerOf(request)),
          occurredAt: occurredAt(request.body.occurred_at),
        });
      },
    );
  };
}

/** The email open pixel and click links: no login, the signed link is the credential. */
export function trackingLinkRoutes(deps: EngagementRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const { links } = deps;
    if (links === undefined) return;

    app.get(
      '/v1/track/open/:token',
      {
        schema: {
          summary: 'The open pixel of an email (a 1×1 GIF); records the open once',
          operationId: 'trackOpen',
          tags: ['engagement'],
          security: [],
          params: TokenParams,
          produces: ['image/gif'],
          response: answers({ 200: Type.String({ description: 'A 1×1 transparent GIF.' }) }),
        },
      },
      async (request, reply) => {
        const verdict = links.verify(request.params.token);
        // An altered or expired pixel still gets its image (a broken image helps no one), but
        // records nothing.
        if (!verdict.ok || verdict.claim.kind !== 'open')
          deps.metrics.engagementReports.inc({ kind: 'opened', source: 'pixel', result: 'refused' });
        else {
          const userAgent = request.headers['user-agent'];
          const result = await recordEngagement(deps.pool, {
            delivery: { id: verdict.claim.deliveryId },
            kind: 'opened',
            userAgent,
            prefetchAgent: isPrefetchUserAgent(userAgent),
            prefetchWindowSeconds: deps.prefetchWindowSeconds,
          });
          deps.metrics.engagementReports.inc({ kind: 'opened', source: 'pixel', result });
        }
        return reply
          .header('content-type', 'image/gif')
          .header('cache-control', 'no-store, private')
          .send(trackingPixel);
      },
    );

    app.get(
      '/v1/track/click/:token',
      {
        schema: {
          summary: 'A tracked link of an email: records the click once and redirects to the link',
          description:
            'Answers 302 to the link. A client that accepts application/json and not text/html (an app resolving the link itself) gets 200 with the link instead.',
          operationId: 'trackClick',
          tags: ['engagement'],
          security: [],
          params: TokenParams,
          response: answers({
            200: Answer({ url: Type.String({ description: 'The link as written in the message.' }) }),
            302: null,
          }),
        },
      },
      async (request, reply) => {
        const verdict = links.verify(request.params.token);
        if (!verdict.ok || verdict.claim.kind !== 'click')
          deps.metrics.engagementReports.inc({ kind: 'clicked', source: 'link', result: 'refused' });
        if (!verdict.ok)
          throw new ProblemError(
            verdict.reason === 'expired' ? 'tracking_link_expired' : 'tracking_link_invalid',
            verdict.reason === 'expired'
              ? 'This link has expired.'
              : 'The link is altered, forged or malformed.',
          );
        const { claim } = verdict;
        if (claim.kind !== 'click')
          throw new ProblemError('tracking_link_invalid', 'The link is altered, forged or malformed.');
        const result = await recordEngagement(deps.pool, {
          delivery: { id: claim.deliveryId },
          kind: 'clicked',
          linkIndex: claim.index,
          linkUrl: claim.url,
          userAgent: request.headers['user-agent'],
        });
        deps.metrics.engagementReports.inc({ kind: 'clicked', source: 'link', result });
        reply.header('cache-control', 'no-store, private');
        const accept = request.headers.accept ?? '';
        if (accept.includes('application/json') && !accept.includes('text/html')) return { url: claim.url };
        return reply.redirect(claim.url, 302);
      },
    );
  };
}
