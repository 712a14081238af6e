// One-click unsubscribe (RFC 8058) without a login: the signed link from an email's
// List-Unsubscribe header. POST (what mail clients send, with List-Unsubscribe=One-Click)
// opts the user out of the channel for the category; GET only shows a page with a button,
// because link scanners fetch URLs in mail and must not unsubscribe anyone (RFC 8058 §4).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import { useUnsubscribeToken } from '../../db/stores/unsubscribe-token-store.js';
import { ProblemError } from '../../domain/problems.js';
import { channels } from '../../domain/notification.js';
import { Answer, answers, Enum } from '../../http/openapi-contract.js';
import type { UnsubscribeClaim, UnsubscribeTokens } from './unsubscribe-token.js';

const Params = Type.Object({ token: Type.String({ minLength: 1, maxLength: 2048 }) });

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);
}

export function unsubscribeRoutes(deps: { pool: Pool; tokens: UnsubscribeTokens }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // RFC 8058 clients post application/x-www-form-urlencoded "List-Unsubscribe=One-Click";
    // the body carries nothing else, so it is read and ignored (in this plugin only).
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 1024 },
      (_request, body, done) => done(null, body),
    );
    const verify = (token: string): UnsubscribeClaim => {
      const claim = deps.tokens.verify(token);
      if (claim === undefined)
        throw new ProblemError('unsubscribe_link_invalid', 'The link is altered, forged or malformed.');
      return claim;
    };

    app.post(
      '/v1/unsubscribe/:token',
      {
        schema: {
          summary: 'One-click unsubscribe (RFC 8058): opt out of the channel for the category',
          operationId: 'unsubscribe',
          tags: ['preferences'],
          security: [],
          params: Params,
          response: answers({
            200: Answer({
              unsubscribed: Type.Literal(true),
              channel: Enum(channels),
              category: Type.String(),
            }),
          }),
        },
      },
      async (request) => {
        const claim = verify(request.params.token);
        const result = await withTransaction(deps.pool, (client) => useUnsubscribeToken(client, claim));
        if (result === 'used')
          throw new ProblemError('unsubscribe_link_used', 'This link was used before; nothing changed.');
        if (result === 'unknown_user') throw new ProblemError('not_found', 'The user no longer exists.');
        return { unsubscribed: true, channel: claim.channel, category: claim.category };
      },
    );

    app.get(
      '/v1/unsubscribe/:token',
      {
        schema: {
          summary: 'A confirmation page whose button posts the one-click unsubscribe',
          operationId: 'unsubscribePage',
          tags: ['preferences'],
          security: [],
          params: Params,
          produces: ['text/html'],
          response: answers({ 200: Type.String({ description: 'An HTML page with one button.' }) }),
        },
      },
      async (request, reply) => {
        const claim = verify(request.params.token);
        const what = escapeHtml(`${claim.category} ${claim.channel === 'email' ? 'emails' : claim.channel}`);
        return reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', "default-src 'none'; form-action 'self'")
          .send(
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>Unsubscribe</title></head>\n' +
              `<body><p>Stop receiving ${what}?</p>\n` +
              '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">' +
              '<button type="submit">Unsubscribe</button></form></body></html>\n',
          );
      },
    );
  };
}
