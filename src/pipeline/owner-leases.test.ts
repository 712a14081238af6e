// A worker's leases per session owner: the current owner's is kept, an older one only while
// sends it claimed are running, so repeated session losses do not pile up claimers and recorders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OwnerLeases } from './owner-leases.js';

const owners = (leases: OwnerLeases<{ owner: string }>) => leases.all().map((l) => l.owner);

test("an owner's lease is made once and kept while it is the session's", () => {
  let made = 0;
  const leases = new OwnerLeases((owner) => ({ owner, n: (made += 1) }));
  const a = leases.current('a');
  assert.equal(leases.current('a'), a);
  assert.equal(made, 1);
  leases.begin(a);
  leases.end(a);
  assert.deepEqual(owners(leases), ['a'], 'the current owner stays without sends');
});

test('an older owner stays while its sends run and goes with the last one', () => {
  const leases = new OwnerLeases((owner) => ({ owner }));
  const a = leases.current('a');
  leases.begin(a);
  leases.begin(a);
  const b = leases.current('b');
  assert.deepEqual(owners(leases), ['a', 'b']);
  leases.end(a);
  assert.deepEqual(owners(leases), ['a', 'b'], 'one of its sends still runs');
  leases.end(a);
  assert.deepEqual(owners(leases), ['b']);
  leases.begin(b);
  leases.end(b);
  assert.deepEqual(owners(leases), ['b']);
});

test('a session lost again and again holds only the owners still in use', () => {
  const leases = new OwnerLeases((owner) => ({ owner }));
  const busy = leases.current('o0');
  leases.begin(busy);
  for (let i = 1; i <= 100; i += 1) leases.current(`o${String(i)}`);
  assert.deepEqual(owners(leases), ['o0', 'o100']);
});
