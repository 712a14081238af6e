// Realtime inbox: Server-Sent Events to each user's open sessions. Every change to an inbox
// appends a numbered event to the user's stream (inbox-store.ts) in the same transaction, and a
// NOTIFY herald_inbox after commit names the users; each query process looks up what its own
// connections have not seen yet, in batches, and writes it. The event number is the SSE id: a
// client that reconnects with Last-Event-ID gets exactly the events after it. NOTIFY is only a
// hint (a listener disconnected at commit misses it for good): open streams are also checked on a timer and after the listener reconnects.
// A connection costs its socket and a small object; no per-connection timer or query.
// A stream opened with a service's key carries only that service's items. Every stream holds the
// credential it was opened with: when that key or token is revoked (a herald_auth NOTIFY, or the
// timed check) the stream gets a `revoked` event and is closed (docs/security.md).
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import {
  countUnread,
  findInboxItems,
  readInboxEvents,
  streamPositions,
  type InboxEventRow,
  type ServiceScope,
} from '../db/stores/inbox-store.js';
import { ProblemError } from '../domain/problems.js';
import type { WakeListener } from '../db/wake-listener.js';
import { wakeChannels } from '../db/wake-notifier.js';
import type { InboxItem, InboxPresenter } from './inbox-presenter.js';
import type { Metrics } from '../observability/metrics.js';
import type { Credential, CredentialRevocations } from './credential-revocations.js';

export interface InboxStreamOptions {
  readPool: Pool;
  listener: WakeListener;
  presenter: InboxPresenter;
  metrics: Metrics;
  logger: Logger;
  revocations: CredentialRevocations;
  pollMs: number;
  maxConnections: number;
  /** Streams one user may hold open on this process (over it: 429). */
  maxPerUser: number;
  /** Streams one API key may hold open on this process (over it: 429). */
  maxPerKey: number;
  heartbeatMs?: number;
  /** Most events replayed on reconnect; a client further behind gets `reset` and reloads. */
  maxReplay?: number;
  /** A client this far behind in unsent output is disconnected (it reconnects and replays). */
  maxBufferedBytes?: number;
}

/** Who a stream is for, what it was opened with, and which items it carries. */
export interface StreamSubject {
  userId: string;
  credential: Credential;
  scope: ServiceScope;
}

interface StreamClient extends StreamSubject {
  reply: FastifyReply;
  /** The last event number written to this client (or passed over: out of its scope). */
  seq: number;
}

/** Users looked up in one query when many streams need checking at once. */
const batchUsers = 500;

export class InboxStreams {
  private readonly byUser = new Map<string, Set<StreamClient>>();
  private readonly perKey = new Map<number, number>();
  private connections = 0;
  private sweeping: Promise<void> | undefined;
  private readonly dirty = new Set<string>();
  private allDirty = false;
  private running: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly options: InboxStreamOptions) {
    options.listener.subscribe(wakeChannels.inbox, (payload) => this.hint(payload));
    options.listener.subscribe(wakeChannels.auth, () => this.sweep());
    this.timers.push(
      setInterval(() => {
        this.check();
        this.sweep();
      }, options.pollMs),
      setInterval(() => this.heartbeat(), options.heartbeatMs ?? 20_000),
    );
    for (const timer of this.timers) timer.unref();
  }

  get openConnections(): number {
    return this.connections;
  }

  /**
   * Takes over the reply as an event stream for the subject's user: replays events after
   * `lastEventId` (or, without one, starts from now), then follows the user's stream until the
   * client leaves or its credential is revoked.
   */
  async open(subject: StreamSubject, lastEventId: number | undefined, reply: FastifyReply): Promise<void> {
    const { userId } = subject;
    if (this.stopped || this.connections >= this.options.maxConnections) {
      void reply.header('retry-after', '5');
      throw new ProblemError('too_many_streams', 'Reconnect later or to another query process.');
    }
    const keyId = subject.credential.kind === 'key' ? subject.credential.keyId : undefined;
    if ((this.byUser.get(userId)?.size ?? 0) >= this.options.maxPerUser)
      throw new ProblemError(
        'stream_limit_reached',
        `This user has ${String(this.options.maxPerUser)} streams open here; close one first.`,
        undefined,
        { headers: { 'retry-after': '5' } },
      );
    if (keyId !== undefined && (this.perKey.get(keyId) ?? 0) >= this.options.maxPerKey)
      throw new ProblemError(
        'stream_limit_reached',
        `This API key has ${String(this.options.maxPerKey)} streams open here; close some first.`,
        undefined,
        { headers: { 'retry-after': '5' } },
      );
    const { readPool } = this.options;
    const current = (await streamPositions(readPool, [userId])).get(userId) ?? 0;
    const replay =
      lastEventId === undefined || lastEventId >= current
        ? []
        : await readInboxEvents(readPool, [{ userId, seq: lastEventId }], this.maxReplay + 1);
    // A gap (events past retention), an id this stream never sent, or too much to replay: the
    // client reloads its list instead of getting a partial history.
    const reset =
      lastEventId !== undefined &&
      (lastEventId > current ||
        replay.length > this.maxReplay ||
        (replay[0] !== undefined && replay[0].seq !== lastEventId + 1));
    const client: StreamClient = { ...subject, reply, seq: reset ? current : (lastEventId ?? current) };

    reply.hijack();
    const raw = reply.raw;
    // Headers set before the stream took over the response (CORS) go out with it.
    for (const [name, value] of Object.entries(reply.getHeaders()))
      if (value !== undefined) raw.setHeader(name, value);
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write('retry: 3000\n\n');
    this.connections += 1;
    if (keyId !== undefined) this.perKey.set(keyId, (this.perKey.get(keyId) ?? 0) + 1);
    this.options.metrics.inboxStreamsOpen.set(this.connections);
    const set = this.byUser.get(userId) ?? new Set();
    set.add(client);
    this.byUser.set(userId, set);
    raw.on('close', () => this.remove(client));
    try {
      const unread = (await countUnread(readPool, [userId], client.scope)).get(userId) ?? 0;
      if (reset) {
        this.write(client, client.seq, 'reset', { seq: client.seq, unread_count: unread });
      } else if (replay.length > 0) {
        await this.deliver(new Map([[userId, replay]]));
      }
      this.write(client, client.seq, 'ready', { seq: client.seq, unread_count: unread });
    } catch (error) {
      // The response has begun: end it; the client reconnects with its Last-Event-ID.
      this.options.logger.warn({ err: error }, 'inbox stream could not start');
      raw.destroy();
      return;
    }
    // Events committed while this stream was opening.
    this.dirty.add(userId);
    this.kick();
  }

  private get maxReplay(): number {
    return this.options.maxReplay ?? 1000;
  }

  private remove(client: StreamClient): void {
    const set = this.byUser.get(client.userId);
    if (set?.delete(client) !== true) return;
    this.connections -= 1;
    const keyId = client.credential.kind === 'key' ? client.credential.keyId : undefined;
    if (keyId !== undefined) {
      const left = (this.perKey.get(keyId) ?? 1) - 1;
      if (left > 0) this.perKey.set(keyId, left);
      else this.perKey.delete(keyId);
    }
    this.options.metrics.inboxStreamsOpen.set(this.connections);
    if (set.size === 0) this.byUser.delete(client.userId);
  }

  /** A NOTIFY: the named users (or, for '*' or '' after a reconnect, everyone) may have events. */
  private hint(payload: string): void {
    if (payload === '' || payload === '*') {
      this.check();
      return;
    }
    let users: unknown;
    try {
      users = JSON.parse(payload);
    } catch {
      users = undefined;
    }
    if (!Array.isArray(users)) {
      this.check();
      return;
    }
    for (const user of users) if (typeof user === 'string' && this.byUser.has(user)) this.dirty.add(user);
    this.kick();
  }

  /** Every open stream is checked (the timer, a reconnect of the listener, a '*' hint). */
  private check(): void {
    if (this.byUser.size === 0) return;
    this.allDirty = true;
    this.kick();
  }

  /** Runs one catch-up at a time; hints arriving meanwhile are picked up by its next round. */
  private kick(): void {
    if (this.running !== undefined || this.stopped || (this.dirty.size === 0 && !this.allDirty)) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    try {
      while ((this.dirty.size > 0 || this.allDirty) && !this.stopped) await this.catchUp();
    } catch (error) {
      // The next timed check (or hint) looks again; the clients' positions did not move.
      this.options.logger.warn({ err: error }, 'inbox stream catch-up failed; retried on the next check');
    }
  }

  private async catchUp(): Promise<void> {
    const { readPool } = this.options;
    let users: string[];
    if (this.allDirty) {
      this.allDirty = false;
      this.dirty.clear();
      // Positions first: only users whose stream moved past what their clients have need events.
      users = [];
      const all = [...this.byUser.keys()];
      for (let i = 0; i < all.length; i += batchUsers) {
        const chunk = all.slice(i, i + batchUsers);
        const positions = await streamPositions(readPool, chunk);
        for (const user of chunk) {
          const seq = positions.get(user) ?? 0;
          if (seq > this.lowestSeq(user)) users.push(user);
        }
      }
    } else {
      users = [...this.dirty];
      this.dirty.clear();
    }
    for (let i = 0; i < users.length; i += batchUsers) {
      const after = users
        .slice(i, i + batchUsers)
        .filter((u) => this.byUser.has(u))
        .map((userId) => ({ userId, seq: this.lowestSeq(userId) }));
      const events = await readInboxEvents(readPool, after, this.maxReplay);
      const byUser = new Map<string, InboxEventRow[]>();
      for (const e of events) {
        const list = byUser.get(e.user_id);
        if (list === undefined) byUser.set(e.user_id, [e]);
        else list.push(e);
      }
      await this.deliver(byUser);
      // A user with a full batch may have more.
      for (const [user, list] of byUser) if (list.length >= this.maxReplay) this.dirty.add(user);
    }
  }

  private lowestSeq(userId: string): number {
    let lowest = Number.MAX_SAFE_INTEGER;
    for (const client of this.byUser.get(userId) ?? []) lowest = Math.min(lowest, client.seq);
    return lowest;
  }

  /** Writes each user's events, with the items they concern and the unread count, to their clients. */
  private async deliver(byUser: Map<string, InboxEventRow[]>): Promise<void> {
    if (byUser.size === 0) return;
    const { readPool, presenter } = this.options;
    const keys = [...byUser.values()]
      .flat()
      .filter((e) => e.notification_id !== null && e.kind !== 'deleted')
      .map((e) => ({ userId: e.user_id, notificationId: e.notification_id ?? '' }));
    const rows = await findInboxItems(readPool, keys);
    const presented = await presenter.present(readPool, rows);
    const items = new Map<string, InboxItem>();
    rows.forEach((row, i) => {
      const item = presented[i];
      if (item !== undefined) items.set(`${row.user_id}\n${row.id}`, item);
    });
    const unread = await this.unreadCounts(byUser);
    for (const [userId, events] of byUser) {
      for (const client of this.byUser.get(userId) ?? []) {
        for (const e of events) {
          if (e.seq <= client.seq) continue;
          if (
            e.notification_id !== null &&
            client.scope !== undefined &&
            !e.notification_id.startsWith(client.scope)
          ) {
            // Another service's item: not this key's to see. The position still moves past it.
            client.seq = e.seq;
            continue;
          }
          const item =
            e.notification_id === null ? null : (items.get(`${userId}\n${e.notification_id}`) ?? null);
          this.write(client, e.seq, e.kind, {
            seq: e.seq,
            kind: e.kind,
            id: e.notification_id,
            item,
            unread_count: unread.get(`${client.scope ?? ''}\n${userId}`) ?? 0,
          });
        }
      }
    }
  }

  /** Unread counts keyed by scope and user: one query per scope among the users' clients. */
  private async unreadCounts(byUser: Map<string, InboxEventRow[]>): Promise<Map<string, number>> {
    const usersByScope = new Map<string, string[]>();
    for (const userId of byUser.keys())
      for (const client of this.byUser.get(userId) ?? []) {
        const scope = client.scope ?? '';
        const users = usersByScope.get(scope) ?? [];
        if (!users.includes(userId)) users.push(userId);
        usersByScope.set(scope, users);
      }
    const counts = new Map<string, number>();
    for (const [scope, users] of usersByScope) {
      const found = await countUnread(this.options.readPool, users, scope === '' ? undefined : scope);
      for (const user of users) counts.set(`${scope}\n${user}`, found.get(user) ?? 0);
    }
    return counts;
  }

  /**
   * Closes the streams whose key or token was revoked. Runs on a herald_auth NOTIFY and on the
   * timed check (the NOTIFY is only a hint), one sweep at a time.
   */
  private sweep(): void {
    if (this.sweeping !== undefined || this.stopped || this.connections === 0) return;
    const clients = [...this.byUser.values()].flatMap((set) => [...set]);
    this.sweeping = this.options.revocations
      .revokedAmong(clients)
      .then((revoked) => {
        for (const client of revoked) {
          this.write(client, client.seq, 'revoked', { seq: client.seq });
          client.reply.raw.end();
          this.remove(client);
        }
      })
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'revocation check of realtime streams failed; retried');
      })
      .finally(() => {
        this.sweeping = undefined;
      });
  }

  private write(client: StreamClient, seq: number, event: string, data: unknown): void {
    const raw = client.reply.raw;
    if (raw.destroyed || raw.writableEnded) return;
    raw.write(`id: ${String(seq)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    this.options.metrics.inboxStreamEvents.inc({ event });
    client.seq = Math.max(client.seq, seq);
    if (raw.writableLength > (this.options.maxBufferedBytes ?? 1_048_576)) {
      // Not reading: drop it rather than buffer without bound; it reconnects and replays.
      this.options.logger.info({ user: '(withheld)' }, 'closing a realtime stream that does not read');
      raw.destroy();
    }
  }

  /** A comment line keeps proxies from closing idle streams and finds dead sockets. */
  private heartbeat(): void {
    for (const set of this.byUser.values())
      for (const { reply } of set)
        if (!reply.raw.destroyed && !reply.raw.writableEnded) reply.raw.write(': ping\n\n');
  }

  /** Ends every stream (clients reconnect to another process) and stops the timers. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.running;
    await this.sweeping;
    for (const set of this.byUser.values()) for (const client of set) client.reply.raw.end();
    this.byUser.clear();
    this.perKey.clear();
    this.connections = 0;
    this.options.metrics.inboxStreamsOpen.set(0);
  }
}
