import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpNetworkList } from './ip-address.js';
import { OutboundPolicy } from './outbound-policy.js';

const strict = new OutboundPolicy();
const allowing = (list: string) => new OutboundPolicy(parseIpNetworkList(list).networks);
const kindOf = (policy: OutboundPolicy, address: string) => {
  const verdict = policy.checkAddress(address);
  return verdict.allowed ? 'allowed' : verdict.kind;
};

test('every blocked range, at its edges, and public addresses beside them', () => {
  const cases: [string, string][] = [
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['11.0.0.0', 'allowed'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['100.128.0.0', 'allowed'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'allowed'],
    ['192.0.0.170', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'reserved'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', 'allowed'],
    ['93.184.216.34', 'allowed'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd00::1', 'unique-local'],
    ['fc00::1', 'unique-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378::1', 'reserved'],
    ['3fff::1', 'documentation'],
    ['100::1', 'reserved'],
    ['64:ff9b:1::a00:1', 'reserved'],
    ['2606:4700:4700::1111', 'allowed'],
    ['2a00:1450:4001:81b::200e', 'allowed'],
  ];
  for (const [address, kind] of cases) assert.equal(kindOf(strict, address), kind, address);
});

test('IPv6 forms carrying an IPv4 address are judged as that address', () => {
  const cases: [string, string][] = [
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'allowed'],
    ['::127.0.0.1', 'loopback'],
    ['::0.0.0.2', 'unspecified'],
    ['::8.8.8.8', 'allowed'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::8.8.8.8', 'allowed'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['2002:808:808::1', 'allowed'],
  ];
  for (const [address, kind] of cases) assert.equal(kindOf(strict, address), kind, address);
});

test('allowed networks override the blocked ranges, also in their IPv6 carriers, and nothing more', () => {
  const policy = allowing('127.0.0.0/8,fd12:3456::/32');
  assert.equal(kindOf(policy, '127.0.0.1'), 'allowed');
  assert.equal(kindOf(policy, '::ffff:127.0.0.1'), 'allowed');
  assert.equal(kindOf(policy, '64:ff9b::7f00:1'), 'allowed');
  assert.equal(kindOf(policy, '::1'), 'loopback', '127.0.0.0/8 does not allow IPv6 loopback');
  assert.equal(kindOf(policy, 'fd12:3456::9'), 'allowed');
  assert.equal(kindOf(policy, 'fd12:3457::9'), 'unique-local');
  assert.equal(kindOf(policy, '10.0.0.1'), 'private');
  assert.equal(kindOf(policy, '169.254.169.254'), 'link-local');
  assert.equal(kindOf(allowing('::ffff:10.0.0.0/104'), '10.9.9.9'), 'private', 'versions are not mixed');
  assert.equal(kindOf(allowing('::1/128'), '::1'), 'allowed');
});

test('text that is not an address is never allowed', () => {
  assert.equal(kindOf(strict, 'localhost'), 'reserved');
  assert.equal(kindOf(strict, ''), 'reserved');
});

test('URLs: every spelling of a blocked literal and localhost names are refused before any lookup', () => {
  const refused = [
    'http://127.0.0.1:8080/',
    'http://[::1]:8080/',
    'http://0.0.0.0:8080/',
    'http://2130706433:8080/',
    'http://0x7f000001:8080/',
    'http://0x7f.1/',
    'http://0177.0.0.1:8080/',
    'http://127.1:8080/',
    'http://127.0.0.1.:8080/',
    'http://%31%32%37.0.0.1/',
    'http://[::ffff:127.0.0.1]:8080/',
    'http://[0:0:0:0:0:ffff:7f00:1]/',
    'http://[64:ff9b::127.0.0.1]/',
    'http://localhost:8080/',
    'http://LOCALHOST./',
    'http://api.localhost/',
    'https://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
  ];
  for (const url of refused) assert.equal(strict.checkUrl(url).allowed, false, url);
  for (const url of [
    'https://hooks.slack.com/services/T/B/x',
    'http://8.8.8.8/',
    'http://[2606:4700::1]/',
    'http://localhost.example.com/',
    'http://127.0.0.1.nip.io/',
  ])
    assert.equal(strict.checkUrl(url).allowed, true, url);
  assert.deepEqual(strict.checkUrl('http://2130706433/'), { allowed: false, kind: 'loopback' });
  assert.deepEqual(strict.checkUrl('not a url'), { allowed: true }, 'left to the URL check');
});

test('URLs: allowed networks let the literals and localhost names through', () => {
  const policy = allowing('127.0.0.0/8,::1/128');
  for (const url of [
    'http://127.0.0.1:8080/',
    'http://[::1]/',
    'http://2130706433/',
    'http://localhost:3000/',
    'http://[::ffff:127.0.0.1]/',
  ])
    assert.equal(policy.checkUrl(url).allowed, true, url);
  assert.equal(policy.checkUrl('http://10.0.0.1/').allowed, false);
});
