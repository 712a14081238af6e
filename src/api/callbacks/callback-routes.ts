// POST /v1/callbacks/:provider: status reports (delivery receipts, bounces, complaints) that
// providers post after accepting a message. No API key: each provider authenticates its reports
// its own way (Twilio's X-Twilio-Signature, Standard Webhooks signatures, Basic auth for SNS),
// checked by the provider's adapter against the raw body before anything is stored.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import { applyStatusUpdates } from '../../db/stores/receipt-store.js';
import { ProblemError } from '../../domain/problems.js';
import { answers } from '../../http/openapi-contract.js';
import type { ProviderRegistry } from '../../channels/provider-registry.js';
import type { Metrics } from '../../observability/metrics.js';

export function callbackRoutes(deps: {
  pool: Pool;
  providers: ProviderRegistry;
  metrics: Metrics;
  /** PUBLIC_URL: the base the provider signed its URL with; else the request's own host. */
  publicUrl: string | undefined;
}): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // Signatures cover the exact bytes: take every body raw, whatever its content type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });
    app.post(
      '/v1/callbacks/:provider',
      {
        schema: {
          summary: 'Provider status report (delivery receipt, bounce, complaint)',
          description:
            'Called by providers, not by services: authenticated by the provider’s own signature or credentials.',
          tags: ['callbacks'],
          // No API key: the adapter checks the provider's own signature or credentials.
          security: [],
          operationId: 'receiveProviderCallback',
          params: Type.Object({ provider: Type.String({ maxLength: 40 }) }),
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const name = request.params.provider;
        const provider = deps.providers.named(name);
        if (provider?.handleCallback === undefined)
          throw new ProblemError('not_found', `No provider named ${name} takes status reports.`);
        const base = deps.publicUrl ?? `${request.protocol}://${request.host}`;
        const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await provider.handleCallback({
          url: `${base.replace(/\/$/, '')}${request.url}`,
          headers: request.headers,
          rawBody,
        });
        if (!result.ok) {
          deps.metrics.receiptsReceived.inc({ provider: name, result: 'rejected' });
          throw new ProblemError(
            result.status === 401 ? 'callback_unauthenticated' : 'callback_invalid',
            result.reason,
            undefined,
            result.challenge === undefined ? {} : { headers: { 'www-authenticate': result.challenge } },
          );
        }
        const applied = await applyStatusUpdates(deps.pool, name, result.updates);
        const count = (r: string, n: number) => {
          if (n > 0) deps.metrics.receiptsReceived.inc({ provider: name, result: r }, n);
        };
        count('applied', applied.applied);
        count('unchanged', applied.unchanged + result.ignored);
        count('early', applied.early);
        return reply.code(204).send();
      },
    );
  };
}
