import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIpAddress,
  isLoopbackHostname,
  networkContains,
  parseIpAddress,
  parseIpNetwork,
  parseIpNetworkList,
  type IpNetwork,
} from './ip-address.js';

const bytesOf = (text: string) => parseIpAddress(text)?.bytes;

test('IPv4 in canonical dotted decimal only', () => {
  assert.deepEqual(bytesOf('192.168.1.20'), [192, 168, 1, 20]);
  assert.deepEqual(bytesOf('0.0.0.0'), [0, 0, 0, 0]);
  for (const text of [
    '127.1',
    '0177.0.0.1',
    '0x7f.0.0.1',
    '256.0.0.1',
    '1.2.3.4.5',
    '',
    '1.2.3.',
    ' 1.2.3.4',
  ])
    assert.equal(parseIpAddress(text), undefined, text);
});

test('IPv6 with ::, an IPv4 tail, brackets and a zone id', () => {
  const full = (text: string) =>
    parseIpAddress(text) === undefined ? undefined : formatIpAddress(parseIpAddress(text)!);
  assert.equal(full('::'), '0:0:0:0:0:0:0:0');
  assert.equal(full('::1'), '0:0:0:0:0:0:0:1');
  assert.equal(full('[::1]'), '0:0:0:0:0:0:0:1');
  assert.equal(full('fe80::1%eth0'), 'fe80:0:0:0:0:0:0:1');
  assert.equal(full('2001:DB8::8:800:200C:417A'), '2001:db8:0:0:8:800:200c:417a');
  assert.equal(full('::ffff:127.0.0.1'), '0:0:0:0:0:ffff:7f00:1');
  assert.equal(full('::127.0.0.1'), '0:0:0:0:0:0:7f00:1');
  assert.equal(full('1:2:3:4:5:6:10.0.0.1'), '1:2:3:4:5:6:a00:1');
  assert.equal(full('1:2:3:4:5:6:7::'), '1:2:3:4:5:6:7:0');
  for (const text of [
    ':1',
    '1:::2',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2:3:4:5:6:7:8',
    'g::1',
    '12345::',
    '::1.2.3',
    ':1.2.3.4',
    '[::1',
  ])
    assert.equal(parseIpAddress(text), undefined, text);
});

test('networks: prefix bounds, host bits, bare addresses, lists', () => {
  const net = (text: string) => parseIpNetwork(text) as IpNetwork;
  assert.equal(net('10.0.0.0/8').prefix, 8);
  assert.equal(net('10.1.2.3').prefix, 32);
  assert.equal(net('::1').prefix, 128);
  assert.equal(net('0.0.0.0/0').prefix, 0);
  assert.match(parseIpNetwork('10.0.0.0/33') as string, /prefix must be 0–32/);
  assert.match(parseIpNetwork('fd00::/129') as string, /prefix must be 0–128/);
  assert.match(parseIpNetwork('10.0.0.0/08') as string, /prefix/);
  assert.match(parseIpNetwork('10.1.0.0/8') as string, /the network is 10\.0\.0\.0\/8/);
  assert.match(parseIpNetwork('example.com/8') as string, /not an IP address/);
  assert.match(parseIpNetwork('10.0.0.0/8/8') as string, /not an IP address/);
  const list = parseIpNetworkList(' 127.0.0.0/8, ::1/128 ,,fd00::/8');
  assert.deepEqual(list.problems, []);
  assert.equal(list.networks.length, 3);
  assert.equal(parseIpNetworkList('10.0.0.0/8,nope,1.2.3.4/40').problems.length, 2);
});

test('containment is per version and per prefix bit', () => {
  const contains = (network: string, address: string) =>
    networkContains(parseIpNetwork(network) as IpNetwork, parseIpAddress(address)!);
  assert.ok(contains('100.64.0.0/10', '100.127.255.255'));
  assert.ok(!contains('100.64.0.0/10', '100.128.0.0'));
  assert.ok(contains('fe80::/10', 'febf::1'));
  assert.ok(!contains('fe80::/10', 'fec0::1'));
  assert.ok(contains('0.0.0.0/0', '8.8.8.8'));
  assert.ok(!contains('0.0.0.0/0', '::1'), 'an IPv4 network holds no IPv6 address');
});

test('loopback hostnames: localhost, 127.0.0.0/8 and ::1, as URL parsing leaves them', () => {
  const hostname = (url: string) => new URL(url).hostname;
  for (const url of [
    'http://localhost:1',
    'http://LOCALHOST',
    'http://127.0.0.1',
    'http://127.1.2.3',
    'http://[::1]:8080',
    'http://2130706433',
  ])
    assert.equal(isLoopbackHostname(hostname(url)), true, url);
  for (const url of [
    'http://10.0.0.1',
    'http://[::2]',
    'http://localhost.example.com',
    'http://128.0.0.1',
    'http://[::ffff:8.8.8.8]',
  ])
    assert.equal(isLoopbackHostname(hostname(url)), false, url);
});
