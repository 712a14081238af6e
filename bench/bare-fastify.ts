// Baseline for bench/ingest.ts: a bare Fastify route that validates the same body with the
// same schema and answers 202 without touching a database (the HTTP ceiling on this machine).
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { NotificationRequestSchema } from '../src/ingest/notification-request.js';

const app = Fastify({ bodyLimit: 262_144 });
app.post('/v1/notifications', { schema: { body: NotificationRequestSchema } }, async (_request, reply) =>
  reply.code(202).send({ id: `bench#${randomUUID()}`, status: 'accepted' }),
);
const address = await app.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' });
process.stdout.write(`listening ${address}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
