import { test } from 'node:test';
import { createTestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald } from '../helpers/test-herald.js';
test('scratch', async () => {
  const db = await createTestDatabase();
  const h = await startTestHerald(db, { roles: ['api'] });
  const created = await h.call('POST', '/v1/notifications', {
    recipients: ['a'],
    channels: ['in_app'],
    content: { default: { title: 't' } },
  });
  console.log(created.status, created.body);
  const got = await h.call('GET', `/v1/notifications/${idPath(created.body.id)}`);
  console.log(got.status, JSON.stringify(got.body).slice(0, 300));
  await h.stop();
  await db.drop();
});
