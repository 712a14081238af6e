// The APNs payload limit (4096 bytes), checked before a send and by checkContent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setupApns } from '../../../test/helpers/apns-setup.js';
import { apnsPayloadLimit, payloadProblem } from './apns-payload.js';

test('payloadProblem passes a 4096-byte payload and flags 4097 bytes', () => {
  const empty = Buffer.byteLength(JSON.stringify({ aps: { alert: { body: '' }, sound: 'default' } }));
  const fits = { body: 'x'.repeat(apnsPayloadLimit - empty) };
  const over = { body: 'x'.repeat(apnsPayloadLimit - empty + 1) };
  assert.equal(payloadProblem(fits, null), null);
  assert.equal(payloadProblem(over, null), 'the APNs payload would be 4097 bytes; the limit is 4096');
  // Multi-byte characters count as bytes, data keys count too.
  assert.notEqual(payloadProblem({ body: 'é'.repeat(2100) }, null), null);
  assert.notEqual(payloadProblem({ body: 'hi' }, { blob: 'x'.repeat(4100) }), null);
});

test('checkContent is payloadProblem', async (t) => {
  const { provider } = await setupApns(t);
  assert.equal(provider.checkContent({ title: 'hi' }, null), null);
  assert.match(provider.checkContent({ body: 'x'.repeat(5000) }, null) ?? '', /limit is 4096/);
});
