// /v1/callback-subscriptions: a service's status callback subscriptions (docs/callbacks.md): the
// URL Herald POSTs its notifications' events to, the event types, and the signing secret, shown
// when created or rotated only. Another service's subscription is a 404, as an unknown one.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  maxSubscriptionsPerService,
  rotateSubscriptionSecret,
  updateSubscription,
  type CallbackSubscription,
} from '../../db/stores/callback-store.js';
import { callbackEventTypes } from '../../domain/callbacks.js';
import { uuidPatternText } from '../../domain/ids.js';
import { maskTarget } from '../../domain/contact.js';
import { ProblemError } from '../../domain/problems.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import type { OutboundLookup } from '../../channels/outbound-connector.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { Answer, answers, Enum, Timestamp } from '../../http/openapi-contract.js';
import { checkTargetUrl } from '../check-target-url.js';
import { auditedChange } from '../audited-change.js';

const subscriptionProperties = {
  id: Type.String(),
  url: Type.String(),
  event_types: Type.Array(Enum(callbackEventTypes)),
  enabled: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
};
const SubscriptionSchema = Answer(subscriptionProperties);
const SubscriptionWithSecret = Answer({
  ...subscriptionProperties,
  secret: Type.String({
    description: 'Signing secret (whsec_…), shown only now: verify the Standard Webhooks signature with it.',
  }),
});

const Url = Type.String({ minLength: 1, maxLength: 2048 });
const EventTypes = Type.Array(Enum(callbackEventTypes), { minItems: 1, maxItems: callbackEventTypes.length });
const IdParams = Type.Object(
  { id: Type.String({ pattern: uuidPatternText }) },
  { additionalProperties: false },
);

function present(s: CallbackSubscription) {
  return {
    id: s.id,
    url: s.url,
    event_types: s.eventTypes as (typeof callbackEventTypes)[number][],
    enabled: s.enabled,
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
  };
}

function presentWithSecret(s: CallbackSubscription) {
  return { ...present(s), secret: s.secret ?? '' };
}

export interface SubscriptionRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  outbound: OutboundPolicy;
  /** Resolves a URL's host name at write time (tests replace it); dns.lookup otherwise. */
  lookup?: OutboundLookup;
}

const audit = (action: string, serviceName: string, id?: string) => ({
  action: `callback_subscription.${action}`,
  target: `callback_subscription:${serviceName}${id === undefined ? '' : `/${id}`}`,
});

/** How long a write waits for a host name's addresses. */
const dnsWaitMs = 2000;

const notFound = () => new ProblemError('not_found', 'No such callback subscription.');

/**
 * The URL checks of a subscription: an http(s) URL whose host is no refused address literal or
 * localhost name, and whose name does not resolve to a refused address now. The sender checks
 * again on every connection (a name may change its addresses later).
 */
async function checkUrl(deps: SubscriptionRouteDeps, url: string): Promise<void> {
  const problem = checkTargetUrl(url, deps.outbound);
  const refuse = (code: 'invalid_url' | 'target_blocked', message: string) =>
    new ProblemError(code, `body/url ${message}.`, [{ field: 'body/url', message }]);
  if (problem !== undefined) throw refuse(problem.code, problem.message);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return;
  const resolve = deps.lookup ?? ((name: string) => dnsLookup(name, { all: true }));
  // A name that does not resolve now (or within 2 seconds) may later: the sender checks it on
  // every connection.
  let timer: NodeJS.Timeout | undefined;
  const addresses = await Promise.race([
    resolve(host).catch(() => []),
    new Promise<[]>((done) => (timer = setTimeout(() => done([]), dnsWaitMs))),
  ]).finally(() => clearTimeout(timer));
  for (const { address } of addresses) {
    const verdict = deps.outbound.checkAddress(address);
    if (!verdict.allowed)
      throw refuse('target_blocked', `resolves to a ${verdict.kind} address, which Herald does not call`);
  }
}

/** Creating, listing and reading subscriptions. */
export function subscriptionRoutes(deps: SubscriptionRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['callback subscriptions'];
    const admin = requirePermission(deps.authenticate, ['admin']);

    app.post(
      '/v1/callback-subscriptions',
      {
        onRequest: admin,
        schema: {
          summary: 'Subscribe a URL to status callbacks; answers with its signing secret, once',
          operationId: 'createCallbackSubscription',
          tags,
          body: Type.Object(
            { url: Url, event_types: EventTypes, enabled: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: answers({ 201: SubscriptionWithSecret }),
        },
      },
      async (request, reply) => {
        const { url, event_types: eventTypes, enabled } = request.body;
        await checkUrl(deps, url);
        const caller = callerOf(request);
        const created = await auditedChange(
          deps.pool,
          request,
          audit('create', caller.serviceName),
          async (client) => {
            const s = await createSubscription(
              client,
              { id: caller.serviceId, name: caller.serviceName },
              { url, eventTypes: [...new Set(eventTypes)], enabled: enabled ?? true },
            );
            if (s === undefined)
              throw new ProblemError(
                'callback_subscription_limit',
                `A service has at most ${String(maxSubscriptionsPerService)} callback subscriptions.`,
              );
            return {
              result: s,
              after: { id: s.id, url: maskTarget('webhook', url), event_types: s.eventTypes },
            };
          },
        );
        return reply.code(201).send(presentWithSecret(created));
      },
    );

    app.get(
      '/v1/callback-subscriptions',
      {
        onRequest: admin,
        schema: {
          summary: "Your service's callback subscriptions",
          operationId: 'listCallbackSubscriptions',
          tags,
          response: answers({ 200: Answer({ subscriptions: Type.Array(SubscriptionSchema) }) }),
        },
      },
      async (request) => ({
        subscriptions: (await listSubscriptions(deps.pool, callerOf(request).serviceId)).map(present),
      }),
    );

    app.get(
      '/v1/callback-subscriptions/:id',
      {
        onRequest: admin,
        schema: {
          summary: 'One callback subscription',
          operationId: 'getCallbackSubscription',
          tags,
          params: IdParams,
          response: answers({ 200: SubscriptionSchema }),
        },
      },
      async (request) => {
        const s = await getSubscription(deps.pool, callerOf(request).serviceId, request.params.id);
        if (s === undefined) throw notFound();
        return present(s);
      },
    );
  };
}

/** Changes, deletion and secret rotation of one subscription. */
export function subscriptionChangeRoutes(deps: SubscriptionRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['callback subscriptions'];
    const admin = requirePermission(deps.authenticate, ['admin']);
    app.patch(
      '/v1/callback-subscriptions/:id',
      {
        onRequest: admin,
        schema: {
          summary: 'Change a callback subscription (URL, event types, enabled)',
          operationId: 'updateCallbackSubscription',
          tags,
          params: IdParams,
          body: Type.Object(
            {
              url: Type.Optional(Url),
              event_types: Type.Optional(EventTypes),
              enabled: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: answers({ 200: SubscriptionSchema }),
        },
      },
      async (request) => {
        const { url, event_types: eventTypes, enabled } = request.body;
        if (url !== undefined) await checkUrl(deps, url);
        const caller = callerOf(request);
        const { id } = request.params;
        return auditedChange(deps.pool, request, audit('update', caller.serviceName, id), async (client) => {
          const before = await getSubscription(client, caller.serviceId, id, { forUpdate: true });
          if (before === undefined) throw notFound();
          const after = await updateSubscription(client, caller.serviceId, id, {
            url,
            eventTypes: eventTypes === undefined ? undefined : [...new Set(eventTypes)],
            enabled,
          });
          if (after === undefined) throw notFound();
          const shown = (s: CallbackSubscription) => ({
            url: maskTarget('webhook', s.url),
            event_types: s.eventTypes,
            enabled: s.enabled,
          });
          return { result: present(after), before: shown(before), after: shown(after) };
        });
      },
    );

    app.delete(
      '/v1/callback-subscriptions/:id',
      {
        onRequest: admin,
        schema: {
          summary: 'Delete a callback subscription with its queued and dead messages',
          operationId: 'deleteCallbackSubscription',
          tags,
          params: IdParams,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const { id } = request.params;
        await auditedChange(deps.pool, request, audit('delete', caller.serviceName, id), async (client) => {
          if (!(await deleteSubscription(client, caller.serviceId, id))) throw notFound();
          return { result: undefined };
        });
        return reply.code(204).send();
      },
    );

    app.post(
      '/v1/callback-subscriptions/:id/rotate-secret',
      {
        onRequest: admin,
        schema: {
          summary: 'Replace the signing secret; the previous one keeps signing beside it for 24 hours',
          operationId: 'rotateCallbackSubscriptionSecret',
          tags,
          params: IdParams,
          response: answers({ 200: SubscriptionWithSecret }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { id } = request.params;
        // Never the secret itself in the audit log.
        const rotated = await auditedChange(
          deps.pool,
          request,
          audit('rotate_secret', caller.serviceName, id),
          async (client) => {
            const s = await rotateSubscriptionSecret(client, caller.serviceId, id);
            if (s === undefined) throw notFound();
            return { result: s };
          },
        );
        return presentWithSecret(rotated);
      },
    );
  };
}
