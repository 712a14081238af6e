// Idempotency keys in a batch of accepted requests: which request creates its notification,
// which replays an earlier one (same key, same body) and which conflicts (same key, another
// body). Pure, in three steps around the database: planClaims says which keys to insert,
// decideIdempotency reads which went in, and decideAgainstHeldKeys settles a request whose
// keys an earlier, committed request holds.

/** A key a request claims, with the hash of the request's body. */
export interface KeyClaim {
  key: string;
  requestHash: Uint8Array;
}

export interface KeyedRequest {
  serviceId: number;
  claims: readonly KeyClaim[];
}

/** A key to insert for request `item` of the batch. */
export interface OwnClaim extends KeyClaim {
  item: number;
  serviceId: number;
}

export interface ClaimPlan {
  /** Request → the earlier request of the batch whose key it repeats (its leader). */
  leaderOf: ReadonlyMap<number, number>;
  /**
   * The keys to insert: those of requests without a leader, sorted by service and key, so two
   * batches never lock keys in opposite order.
   */
  ownClaims: readonly OwnClaim[];
}

export type ClaimOutcome =
  | { kind: 'created' }
  /** Same body as `leader`, a request of this batch that creates its notification. */
  | { kind: 'replayed_in_batch'; leader: number }
  | { kind: 'conflict' }
  /** Settled by what earlier requests hold under `keys` (decideAgainstHeldKeys). */
  | { kind: 'lookup'; keys: string[] };

export interface IdempotencyDecision {
  /** One per request, in order. */
  outcomes: ClaimOutcome[];
  /** Keys this batch inserted for requests that create nothing: deleted again. */
  undo: OwnClaim[];
}

/** What an earlier request holds under one key. */
export interface HeldKey {
  notificationId: string;
  notificationCreatedAt: Date;
  requestHash: Uint8Array;
}

export type HeldKeysDecision =
  { kind: 'replay'; notificationId: string; notificationCreatedAt: Date } | { kind: 'conflict' };

function claimId(serviceId: number, key: string): string {
  return `${String(serviceId)}\u0000${key}`;
}

function byServiceThenKey(x: OwnClaim, y: OwnClaim): number {
  return x.serviceId - y.serviceId || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
}

/**
 * Settles duplicates within the batch before any SQL: a request repeating a key of an earlier
 * request follows that request and inserts none of its keys.
 */
export function planClaims(requests: readonly KeyedRequest[]): ClaimPlan {
  const leaderOf = new Map<number, number>();
  const firstClaim = new Map<string, OwnClaim>();
  const claims: OwnClaim[] = [];
  requests.forEach((request, item) => {
    for (const c of request.claims) {
      const id = claimId(request.serviceId, c.key);
      const earlier = firstClaim.get(id);
      if (earlier !== undefined && earlier.item !== item) {
        leaderOf.set(item, earlier.item);
        return;
      }
      const own = { item, serviceId: request.serviceId, key: c.key, requestHash: c.requestHash };
      firstClaim.set(id, own);
      claims.push(own);
    }
  });
  const ownClaims = claims.filter((c) => !leaderOf.has(c.item)).sort(byServiceThenKey);
  return { leaderOf, ownClaims };
}

/**
 * Each request's outcome once its keys are inserted (`inserted`: the keys that went in; the
 * others an earlier, committed request holds). A request that got all its keys creates; one
 * that did not gives back the keys it got and is settled by what the others hold. A follower
 * of a request created here is compared with it; of one not created, with what the database
 * holds under its keys.
 */
export function decideIdempotency(
  requests: readonly KeyedRequest[],
  plan: ClaimPlan,
  inserted: readonly { serviceId: number; key: string }[],
): IdempotencyDecision {
  const went = new Set(inserted.map((k) => claimId(k.serviceId, k.key)));
  const outcomes: ClaimOutcome[] = requests.map(() => ({ kind: 'created' }));
  const undo: OwnClaim[] = [];
  requests.forEach((_, item) => {
    if (plan.leaderOf.has(item)) return;
    const mine = plan.ownClaims.filter((c) => c.item === item);
    const taken = mine.filter((c) => !went.has(claimId(c.serviceId, c.key)));
    if (taken.length === 0) return;
    undo.push(...mine.filter((c) => went.has(claimId(c.serviceId, c.key))));
    outcomes[item] = { kind: 'lookup', keys: taken.map((c) => c.key) };
  });
  requests.forEach((request, item) => {
    if (!plan.leaderOf.has(item)) return;
    const root = rootLeader(item, plan.leaderOf);
    const leader = requests[root];
    if (leader === undefined || outcomes[root]?.kind !== 'created')
      outcomes[item] = { kind: 'lookup', keys: request.claims.map((c) => c.key) };
    else if (sameBytes(requestHashOf(request), requestHashOf(leader)))
      outcomes[item] = { kind: 'replayed_in_batch', leader: root };
    else outcomes[item] = { kind: 'conflict' };
  });
  return { outcomes, undo };
}

/** The first request of a chain of leaders: the one that inserted the keys. */
function rootLeader(item: number, leaderOf: ReadonlyMap<number, number>): number {
  let at = item;
  for (let next = leaderOf.get(at); next !== undefined; next = leaderOf.get(at)) at = next;
  return at;
}

/**
 * A request whose keys are held elsewhere replays that notification when every key is held,
 * all for the same notification and with this request's body; otherwise it conflicts.
 */
export function decideAgainstHeldKeys(
  request: KeyedRequest,
  keys: readonly string[],
  held: readonly HeldKey[],
): HeldKeysDecision {
  const first = held[0];
  const hash = requestHashOf(request);
  const same =
    first !== undefined &&
    held.length === keys.length &&
    held.every((h) => h.notificationId === first.notificationId && sameBytes(h.requestHash, hash));
  return same
    ? {
        kind: 'replay',
        notificationId: first.notificationId,
        notificationCreatedAt: first.notificationCreatedAt,
      }
    : { kind: 'conflict' };
}

/** Every claim of a request carries the same hash, of the whole request. */
function requestHashOf(request: KeyedRequest): Uint8Array {
  return request.claims[0]?.requestHash ?? new Uint8Array(0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
