// The connector against real sockets: a blocked target never gets a TCP connection, names are
// judged by what they resolve to on each new connection, and TLS still verifies the name.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { parseIpNetworkList } from '../domain/ip-address.js';
import { OutboundPolicy } from '../domain/outbound-policy.js';
import { networkReason } from './network-reason.js';
import { OutboundBlockedError, outboundConnector, type OutboundLookup } from './outbound-connector.js';
import { testCertificate } from '../../test/helpers/tls.js';
import { closeServer } from '../../test/helpers/loopback-server.js';

const policy = (allowed = '') => new OutboundPolicy(parseIpNetworkList(allowed).networks);

/** An HTTP server on `host` that counts the TCP connections it accepts; it closes each after one answer. */
async function countingServer(host: string, server: Server = createServer()) {
  let connections = 0;
  server.on('connection', () => (connections += 1));
  server.on('request', (_req, res) => res.writeHead(200, { connection: 'close' }).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
  };
}

/** A resolver answering from a table; each call takes the next answer of the name's list. */
function scriptedLookup(answers: Record<string, string[][]>): OutboundLookup {
  return (hostname) => {
    const next = answers[hostname]?.shift();
    if (next === undefined)
      return Promise.reject(Object.assign(new Error('no such name'), { code: 'ENOTFOUND' }));
    return Promise.resolve(next.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
}

async function call(agent: Agent, url: string): Promise<number | string> {
  try {
    const response = await request(url, { dispatcher: agent });
    await response.body.dump();
    return response.statusCode;
  } catch (error) {
    return networkReason(error);
  }
}

describe('outbound connector', () => {
  let target: Awaited<ReturnType<typeof countingServer>>;
  let other: Awaited<ReturnType<typeof countingServer>>;
  const agents: Agent[] = [];
  const agent = (allowed: string, lookup?: OutboundLookup) => {
    const a = new Agent({ connect: outboundConnector(policy(allowed), { timeout: 2000, lookup }) });
    agents.push(a);
    return a;
  };

  before(async () => {
    target = await countingServer('127.0.0.1');
    // A second loopback address: on Linux all of 127.0.0.0/8 is the loopback interface.
    other = await countingServer('127.0.0.2');
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all([closeServer(target.server), closeServer(other.server)]);
  });

  test('an address literal the policy refuses is never connected to, in any spelling', async () => {
    const strict = agent('');
    const port = String(target.port);
    for (const url of [
      `http://127.0.0.1:${port}/`,
      `http://2130706433:${port}/`,
      `http://0x7f.1:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://0.0.0.0:${port}/`,
      `http://[::1]:${port}/`,
    ])
      assert.equal(await call(strict, url), 'blocked', url);
    assert.equal(target.connections(), 0);
  });

  test('the error says blocked, and why, without the address', async () => {
    await assert.rejects(
      request(`http://127.0.0.1:${String(target.port)}/`, { dispatcher: agent('') }),
      (error: unknown) =>
        error instanceof OutboundBlockedError &&
        error.kind === 'loopback' &&
        !error.message.includes('127.0.0.1'),
    );
  });

  test('a name that resolves only to refused addresses is never connected to', async () => {
    const lookup = scriptedLookup({
      'hooks.example': [['127.0.0.1', '::1']],
      'meta.example': [['169.254.169.254']],
    });
    const strict = agent('', lookup);
    assert.equal(await call(strict, `http://hooks.example:${String(target.port)}/`), 'blocked');
    assert.equal(await call(strict, 'http://meta.example/'), 'blocked');
    assert.equal(target.connections(), 0);
  });

  test('refused addresses are dropped and an allowed one of the same name is used', async () => {
    const lookup = scriptedLookup({ 'mixed.example': [['127.0.0.2', '127.0.0.1']] });
    const before = other.connections();
    assert.equal(
      await call(agent('127.0.0.1/32', lookup), `http://mixed.example:${String(target.port)}/`),
      200,
    );
    assert.equal(target.connections(), 1);
    assert.equal(other.connections(), before, '127.0.0.2 is not allowed');
  });

  test('every new connection resolves again: a name rebound to a refused address is caught', async () => {
    // The server closes each connection after one answer, so the second call needs a new one.
    const port = String(other.port);
    const lookup = scriptedLookup({ 'rebind.example': [['127.0.0.2'], ['127.0.0.1']] });
    const rebinding = agent('127.0.0.2/32', lookup);
    const seen = other.connections();
    const connectionsToTarget = target.connections();
    assert.equal(await call(rebinding, `http://rebind.example:${port}/`), 200);
    assert.equal(other.connections(), seen + 1);
    assert.equal(await call(rebinding, `http://rebind.example:${port}/`), 'blocked');
    assert.equal(target.connections(), connectionsToTarget, 'no connection to the rebound address');
  });

  test('allowed networks let loopback through; unknown names and closed ports get classified reasons', async () => {
    const loopback = agent('127.0.0.0/8,::1/128', scriptedLookup({}));
    assert.equal(await call(loopback, `http://127.0.0.1:${String(target.port)}/`), 200);
    assert.equal(await call(loopback, 'http://nowhere.example/'), 'dns');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await closeServer(closed);
    assert.equal(await call(loopback, `http://127.0.0.1:${String(closedPort)}/`), 'refused');
  });

  test('TLS is verified against the name in the URL, not the address connected to', async () => {
    const certificate = testCertificate();
    const tls = await countingServer(
      '127.0.0.1',
      createTlsServer({ cert: certificate.cert, key: certificate.key }),
    );
    try {
      const lookup = scriptedLookup({ localhost: [['127.0.0.1']], 'other.example': [['127.0.0.1']] });
      const secure = new Agent({
        connect: outboundConnector(policy('127.0.0.0/8'), {
          timeout: 2000,
          lookup,
          tls: { ca: certificate.ca },
        }),
      });
      agents.push(secure);
      const port = String(tls.port);
      assert.equal(await call(secure, `https://localhost:${port}/`), 200);
      assert.equal(await call(secure, `https://other.example:${port}/`), 'tls');
    } finally {
      await closeServer(tls.server);
    }
  });
});
