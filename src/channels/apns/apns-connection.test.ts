// The APNs adapter's HTTP/2 connection: GOAWAY, a connection lost mid-request, timeouts and
// cancelled sends, a silent peer found by PING, a stalled handshake, stream limits and close().
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { deviceToken, message, never, setupApns, to } from '../../../test/helpers/apns-setup.js';
import { waitFor } from '../../../test/helpers/wait-for.js';

test('GOAWAY: the unanswered push is retried and later sends go over a new connection', async (t) => {
  const { standIn, provider } = await setupApns(t);
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  const token = deviceToken();
  standIn.script(token, [{ kind: 'goaway' }]);

  const outcome = await provider.send(message(to(token)), never);
  assert.equal(outcome.kind, 'retry');

  for (let i = 0; i < 3; i += 1) assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 2);
  assert.equal(standIn.accepted.length, 4);
});

test('a connection destroyed mid-request is a retry, and the next send reconnects', async (t) => {
  const { standIn, provider } = await setupApns(t);
  const token = deviceToken();
  standIn.script(token, [{ kind: 'destroy' }]);

  const outcome = await provider.send(message(to(token)), never);
  assert.equal(outcome.kind, 'retry');
  assert.match(outcome.reason, /^apns no answer/);

  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 2);
});

test('no answer within the timeout, or a cancelled send, is a retry', async (t) => {
  // A second: the send that follows must be answered within it on a busy machine too.
  const { standIn, provider } = await setupApns(t, { settings: { timeoutMs: 1000 } });
  const token = deviceToken();
  standIn.script(token, [{ kind: 'hang' }, { kind: 'hang' }]);

  assert.deepEqual(await provider.send(message(to(token)), never), {
    kind: 'retry',
    reason: 'apns timeout after 1000 ms',
  });

  // The timed-out stream was cancelled (RST_STREAM), not left open on the connection.
  await waitFor('the timed-out stream to close', () => standIn.streamsInFlight === 0);

  const controller = new AbortController();
  const pending = provider.send(message(to(token)), controller.signal);
  await waitFor('the push to reach APNs', () => standIn.streamsInFlight === 1);
  controller.abort();
  assert.deepEqual(await pending, { kind: 'retry', reason: 'apns request aborted' });
  await waitFor('the cancelled stream to close', () => standIn.streamsInFlight === 0);

  // The cancelled streams left the connection usable.
  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 1);
});

/**
 * A TCP relay in front of the stand-in that can go silent, like a peer behind a dead NAT entry.
 * Without an upstream it only holds connections: a server that never answers the handshake.
 */
async function startRelay(t: TestContext, upstreamPort?: number) {
  const relay = { isSilent: false, port: 0, accepted: 0, open: 0 };
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    relay.accepted += 1;
    relay.open += 1;
    track(client);
    client.on('close', () => (relay.open -= 1));
    if (upstreamPort === undefined) {
      client.resume(); // read, so the client's close is seen
      return;
    }
    const upstream = connectTcp(upstreamPort, '127.0.0.1');
    track(upstream);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk: Buffer) => {
        if (!relay.isSilent) to.write(chunk);
      });
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.port = (server.address() as AddressInfo).port;
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return relay;
}

// Timeouts of a second: the first send makes a TLS and HTTP/2 handshake through a relay, which on a
// loaded machine can take longer than a few hundred milliseconds.
test('a peer that stops answering is found by PING after a timeout, and the next send reconnects', async (t) => {
  const { standIn } = await setupApns(t);
  const relay = await startRelay(t, Number(new URL(standIn.url).port));
  const { provider } = await setupApns(t, {
    settings: { url: `https://localhost:${String(relay.port)}`, timeoutMs: 1000 },
  });
  assert.equal((await provider.send(message(), never)).kind, 'sent');

  relay.isSilent = true;
  assert.deepEqual(await provider.send(message(), never), {
    kind: 'retry',
    reason: 'apns timeout after 1000 ms',
  });
  await waitFor('the silent connection to be dropped', () => relay.open === 0);
  relay.isSilent = false;

  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(relay.accepted, 2);
});

test('a server that never completes the handshake times out, and the next send connects anew', async (t) => {
  const relay = await startRelay(t);
  const { provider } = await setupApns(t, {
    settings: { url: `https://localhost:${String(relay.port)}`, timeoutMs: 1000 },
  });

  assert.deepEqual(await provider.send(message(), never), {
    kind: 'retry',
    reason: 'apns timeout after 1000 ms',
  });
  await waitFor('the stalled connection to be dropped', () => relay.open === 0);
  assert.equal((await provider.send(message(), never)).kind, 'retry');
  assert.equal(relay.accepted, 2);
});

test('200 concurrent sends all succeed over one connection within its stream limit', async (t) => {
  const { standIn, provider } = await setupApns(t, {
    standIn: { maxConcurrentStreams: 20, answerDelayMs: 5 },
  });
  const messages = Array.from({ length: 200 }, () => message());

  const outcomes = await Promise.all(messages.map((m) => provider.send(m, never)));

  assert.deepEqual(
    outcomes.map((o) => o.kind),
    messages.map(() => 'sent'),
  );
  assert.equal(standIn.accepted.length, 200);
  assert.equal(standIn.connectionsOpened, 1);
  assert.equal(standIn.jwtsSeen.size, 1);
  assert.ok(standIn.maxStreamsInFlight <= 20, `${String(standIn.maxStreamsInFlight)} streams at once`);
  assert.ok(standIn.maxStreamsInFlight > 1, 'the sends overlapped');
});

test('a stream limit lowered on a live connection is respected', async (t) => {
  const { standIn, provider } = await setupApns(t, { standIn: { answerDelayMs: 5 } });
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  await standIn.limitStreams(2);
  standIn.maxStreamsInFlight = 0;

  const outcomes = await Promise.all(Array.from({ length: 30 }, () => provider.send(message(), never)));

  assert.ok(outcomes.every((o) => o.kind === 'sent'));
  assert.ok(standIn.maxStreamsInFlight <= 2, `${String(standIn.maxStreamsInFlight)} streams at once`);
  assert.equal(standIn.connectionsOpened, 1);
});

test('close() ends within the timeout even with a push in flight', async (t) => {
  const { standIn, provider } = await setupApns(t, { settings: { timeoutMs: 300 } });
  const token = deviceToken();
  standIn.script(token, [{ kind: 'hang' }]);
  const pending = provider.send(message(to(token)), never);
  await waitFor('the push to reach APNs', () => standIn.streamsInFlight === 1);

  await provider.close();

  assert.equal((await pending).kind, 'retry');
  assert.deepEqual(await provider.send(message(), never), { kind: 'retry', reason: 'apns provider closed' });
});
