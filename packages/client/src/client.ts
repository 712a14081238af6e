// HeraldClient: Herald's api and query roles as typed methods. Every request and answer is typed
// from the OpenAPI documents (generated/*.ts); an error answer is thrown as a HeraldProblem with
// its code. Calls go through retryingFetch: a timeout per attempt, retries with backoff on no
// answer, 5xx and 429 (honouring Retry-After) for requests safe to repeat, and one
// Idempotency-Key per send, repeated by every retry.
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths as ApiPaths } from './generated/api.js';
import type { paths as QueryPaths } from './generated/query.js';
import { HeraldHttpError, HeraldProblem, type ProblemBody } from './problem.js';
import { retryAfterMs, retryingFetch, type RetryPolicy } from './retrying-fetch.js';

type Body<P extends keyof ApiPaths, M extends 'post' | 'put' | 'patch'> = ApiPaths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;
type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type Answer<P extends keyof ApiPaths, M extends 'get' | 'post' | 'put' | 'patch', S extends number> = Json<
  ApiPaths[P][M] extends { responses: Record<S, infer R> } ? R : never
>;
type QueryAnswer<P extends keyof QueryPaths, M extends 'get' | 'post' | 'put', S extends number> = Json<
  QueryPaths[P][M] extends { responses: Record<S, infer R> } ? R : never
>;

export type NotificationRequest = Body<'/v1/notifications', 'post'>;
export type Accepted = Answer<'/v1/notifications', 'post', 202>;
export type Notification = Answer<'/v1/notifications/{id}', 'get', 200>;
export type DeadLetter = Answer<'/v1/dead-letters', 'get', 200>['dead_letters'][number];
export type User = Answer<'/v1/users/{userId}', 'get', 200>;
export type Device = Answer<'/v1/users/{userId}/devices', 'post', 201>;
export type Template = Answer<'/v1/templates/{key}', 'get', 200>;
export type UserToken = QueryAnswer<'/v1/users/{userId}/token', 'post', 201>;
export type InboxItem = QueryAnswer<'/v1/users/{userId}/inbox', 'get', 200>['items'][number];

export interface HeraldClientOptions {
  /** The api role, e.g. https://herald.example.com. */
  baseUrl: string;
  /** The query role (user tokens, inboxes, support lookups); default: baseUrl. */
  queryUrl?: string;
  /** An API key, or a function giving the bearer token to send (called per request). */
  apiKey: string | (() => string | Promise<string>);
  /** Each attempt's time limit (default 10 000 ms). */
  timeoutMs?: number;
  /** Attempts after the first for what is safe to repeat (default 3). */
  retries?: number;
  /** First retry delay, doubling per retry, with jitter (default 250 ms). */
  backoffMs?: number;
  /** Another fetch (a test's, an instrumented one); default: the global fetch. */
  fetch?: typeof fetch;
}

/** The answer's data, or the problem it is thrown as. */
async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const result = await call;
  const { response } = result;
  if (response.ok) return result.data as T;
  const type = response.headers.get('content-type') ?? '';
  const retryAfter = retryAfterMs(response);
  if (
    type.startsWith('application/problem+json') &&
    typeof result.error === 'object' &&
    result.error !== null
  )
    throw new HeraldProblem(
      result.error as ProblemBody,
      retryAfter === undefined ? undefined : retryAfter / 1000,
    );
  throw new HeraldHttpError(
    response.status,
    typeof result.error === 'string' ? result.error : JSON.stringify(result.error),
  );
}

/** Every page of a cursor listing, item by item. */
async function* pages<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.items;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}

export class HeraldClient {
  private readonly api;
  private readonly query;

  constructor(options: HeraldClientOptions) {
    const policy: RetryPolicy = {
      retries: options.retries ?? 3,
      timeoutMs: options.timeoutMs ?? 10_000,
      backoffMs: options.backoffMs ?? 250,
    };
    const fetcher = retryingFetch(policy, options.fetch);
    const key = options.apiKey;
    const auth: Middleware = {
      async onRequest({ request }) {
        request.headers.set('authorization', `Bearer ${typeof key === 'string' ? key : await key()}`);
        return request;
      },
    };
    this.api = createClient<ApiPaths>({ baseUrl: options.baseUrl, fetch: fetcher });
    this.query = createClient<QueryPaths>({ baseUrl: options.queryUrl ?? options.baseUrl, fetch: fetcher });
    this.api.use(auth);
    this.query.use(auth);
  }

  readonly notifications = {
    /**
     * Sends a notification. The Idempotency-Key (yours, or a new one) goes with every retry, so a
     * send whose answer was lost is accepted once; give your own to make your retries safe too.
     */
    send: (body: NotificationRequest, options: { idempotencyKey?: string } = {}): Promise<Accepted> =>
      unwrap(
        this.api.POST('/v1/notifications', {
          body,
          params: { header: { 'idempotency-key': options.idempotencyKey ?? crypto.randomUUID() } },
        }),
      ),
    get: (id: string): Promise<Notification> =>
      unwrap(this.api.GET('/v1/notifications/{id}', { params: { path: { id } } })),
    update: (id: string, body: Body<'/v1/notifications/{id}', 'patch'>) =>
      unwrap(this.api.PATCH('/v1/notifications/{id}', { params: { path: { id } }, body })),
    cancel: (id: string) =>
      unwrap(this.api.POST('/v1/notifications/{id}/cancel', { params: { path: { id } } })),
  };

  readonly users = {
    upsert: (userId: string, body: Body<'/v1/users/{userId}', 'put'>) =>
      unwrap(this.api.PUT('/v1/users/{userId}', { params: { path: { userId } }, body })),
    upsertMany: (users: Body<'/v1/users/bulk', 'post'>['users']) =>
      unwrap(this.api.POST('/v1/users/bulk', { body: { users } })),
    get: (userId: string): Promise<User> =>
      unwrap(this.api.GET('/v1/users/{userId}', { params: { path: { userId } } })),
    delete: (userId: string): Promise<void> =>
      unwrap(this.api.DELETE('/v1/users/{userId}', { params: { path: { userId } } })),
    contactHistory: (userId: string, limit?: number) =>
      unwrap(
        this.api.GET('/v1/users/{userId}/contact-history', {
          params: { path: { userId }, query: limit === undefined ? {} : { limit } },
        }),
      ),
    devices: (userId: string) =>
      unwrap(this.api.GET('/v1/users/{userId}/devices', { params: { path: { userId } } })),
    registerDevice: (userId: string, body: Body<'/v1/users/{userId}/devices', 'post'>): Promise<Device> =>
      unwrap(this.api.POST('/v1/users/{userId}/devices', { params: { path: { userId } }, body })),
    replaceDevices: (userId: string, devices: Body<'/v1/users/{userId}/devices', 'put'>['devices']) =>
      unwrap(this.api.PUT('/v1/users/{userId}/devices', { params: { path: { userId } }, body: { devices } })),
    removeDevice: (userId: string, deviceId: string): Promise<void> =>
      unwrap(
        this.api.DELETE('/v1/users/{userId}/devices/{deviceId}', { params: { path: { userId, deviceId } } }),
      ),
    preferences: (userId: string) =>
      unwrap(this.api.GET('/v1/users/{userId}/preferences', { params: { path: { userId } } })),
    setPreferences: (userId: string, body: Body<'/v1/users/{userId}/preferences', 'put'>) =>
      unwrap(this.api.PUT('/v1/users/{userId}/preferences', { params: { path: { userId } }, body })),
  };

  readonly deadLetters = {
    /** One page, newest first; pass the last page's next_cursor for the next. */
    list: (options: { limit?: number; cursor?: string } = {}) =>
      unwrap(this.api.GET('/v1/dead-letters', { params: { query: options } })),
    /** Every dead letter, newest first, fetched a page at a time as you iterate. */
    all: (pageSize = 100): AsyncGenerator<DeadLetter> =>
      pages(async (cursor) => {
        const page = await this.deadLetters.list({
          limit: pageSize,
          ...(cursor === undefined ? {} : { cursor }),
        });
        return { items: page.dead_letters, next_cursor: page.next_cursor };
      }),
    replay: (selection: Body<'/v1/dead-letters/replay', 'post'>) =>
      unwrap(this.api.POST('/v1/dead-letters/replay', { body: selection })),
  };

  readonly templates = {
    list: () => unwrap(this.api.GET('/v1/templates')),
    get: (key: string, version?: number): Promise<Template> =>
      unwrap(
        this.api.GET('/v1/templates/{key}', {
          params: { path: { key }, query: version === undefined ? {} : { version } },
        }),
      ),
    save: (key: string, body: Body<'/v1/templates/{key}', 'put'>) =>
      unwrap(this.api.PUT('/v1/templates/{key}', { params: { path: { key } }, body })),
    preview: (key: string, body: Body<'/v1/templates/{key}/preview', 'post'> = {}) =>
      unwrap(this.api.POST('/v1/templates/{key}/preview', { params: { path: { key } }, body })),
    /** Every import and undo, newest first. */
    imports: (pageSize = 20) =>
      pages(async (cursor) =>
        unwrap(
          this.api.GET('/v1/templates/imports', {
            params: { query: { limit: pageSize, ...(cursor === undefined ? {} : { cursor }) } },
          }),
        ),
      ),
    undoImport: (importId: number) =>
      unwrap(
        this.api.POST('/v1/templates/imports/{importId}/undo', {
          params: { path: { importId } },
        }),
      ),
  };

  readonly categories = {
    get: (category: string) =>
      unwrap(this.api.GET('/v1/categories/{category}', { params: { path: { category } } })),
    set: (category: string, body: Body<'/v1/categories/{category}', 'put'>) =>
      unwrap(this.api.PUT('/v1/categories/{category}', { params: { path: { category } }, body })),
  };

  /** Engagement (docs/tracking.md): the service's figures, and opens and clicks reported for a user. */
  readonly engagement = {
    figures: (query: NonNullable<ApiPaths['/v1/engagement']['get']['parameters']['query']>) =>
      unwrap(this.api.GET('/v1/engagement', { params: { query } })),
    /** Reports that the user opened a delivery (query role; a key with inbox or the user's token). */
    opened: (userId: string, deliveryId: string, occurredAt?: Date) =>
      unwrap(
        this.query.POST('/v1/users/{userId}/deliveries/{deliveryId}/opened', {
          params: { path: { userId, deliveryId } },
          body: occurredAt === undefined ? {} : { occurred_at: occurredAt.toISOString() },
        }),
      ),
    clicked: (userId: string, deliveryId: string, occurredAt?: Date) =>
      unwrap(
        this.query.POST('/v1/users/{userId}/deliveries/{deliveryId}/clicked', {
          params: { path: { userId, deliveryId } },
          body: occurredAt === undefined ? {} : { occurred_at: occurredAt.toISOString() },
        }),
      ),
    /** Reports that the user clicked an inbox item. */
    inboxClicked: (userId: string, notificationId: string) =>
      unwrap(
        this.query.POST('/v1/users/{userId}/inbox/{notificationId}/clicked', {
          params: { path: { userId, notificationId } },
          body: {},
        }),
      ),
  };

  /** A service's topics and their subscribers; send to one with notifications.send({ topic }). */
  readonly topics = {
    create: (key: string, name?: string) =>
      unwrap(this.api.POST('/v1/topics', { body: { key, ...(name === undefined ? {} : { name }) } })),
    get: (key: string) => unwrap(this.api.GET('/v1/topics/{key}', { params: { path: { key } } })),
    delete: (key: string): Promise<void> =>
      unwrap(this.api.DELETE('/v1/topics/{key}', { params: { path: { key } } })),
    /** Every topic, in key order, fetched a page at a time as you iterate. */
    all: (pageSize = 100) =>
      pages(async (after) => {
        const page = await unwrap(
          this.api.GET('/v1/topics', {
            params: { query: { limit: pageSize, ...(after === undefined ? {} : { after }) } },
          }),
        );
        return { items: page.topics, next_cursor: page.next_after };
      }),
    /** Subscribes up to 10,000 users per call; ids of no user come back in `unknown`. */
    subscribe: (key: string, userIds: string[]) =>
      unwrap(
        this.api.POST('/v1/topics/{key}/subscribers', {
          params: { path: { key } },
          body: { user_ids: userIds },
        }),
      ),
    unsubscribe: (key: string, userIds: string[]) =>
      unwrap(
        this.api.POST('/v1/topics/{key}/subscribers/remove', {
          params: { path: { key } },
          body: { user_ids: userIds },
        }),
      ),
    /** Every subscriber, in user id order, fetched a page at a time as you iterate. */
    subscribers: (key: string, pageSize = 1000) =>
      pages(async (after) => {
        const page = await unwrap(
          this.api.GET('/v1/topics/{key}/subscribers', {
            params: { path: { key }, query: { limit: pageSize, ...(after === undefined ? {} : { after }) } },
          }),
        );
        return { items: page.subscribers, next_cursor: page.next_after };
      }),
    optOut: (userId: string, key: string): Promise<void> =>
      unwrap(this.api.PUT('/v1/users/{userId}/topic-opt-outs/{key}', { params: { path: { userId, key } } })),
    optIn: (userId: string, key: string): Promise<void> =>
      unwrap(
        this.api.DELETE('/v1/users/{userId}/topic-opt-outs/{key}', { params: { path: { userId, key } } }),
      ),
  };

  /** Recurring schedules: a cron expression in each recipient's time zone. */
  readonly schedules = {
    create: (body: Body<'/v1/schedules', 'post'>) => unwrap(this.api.POST('/v1/schedules', { body })),
    get: (id: string) => unwrap(this.api.GET('/v1/schedules/{id}', { params: { path: { id } } })),
    /** Every schedule, fetched a page at a time as you iterate. */
    all: (pageSize = 50) =>
      pages(async (after) => {
        const page = await unwrap(
          this.api.GET('/v1/schedules', {
            params: { query: { limit: pageSize, ...(after === undefined ? {} : { after }) } },
          }),
        );
        return { items: page.schedules, next_cursor: page.next_after };
      }),
    pause: (id: string) => unwrap(this.api.POST('/v1/schedules/{id}/pause', { params: { path: { id } } })),
    resume: (id: string) => unwrap(this.api.POST('/v1/schedules/{id}/resume', { params: { path: { id } } })),
    delete: (id: string): Promise<void> =>
      unwrap(this.api.DELETE('/v1/schedules/{id}', { params: { path: { id } } })),
  };

  readonly service = {
    get: () => unwrap(this.api.GET('/v1/service')),
    setWebhook: (url: string | null) => unwrap(this.api.PUT('/v1/service/webhook', { body: { url } })),
    setChatWebhook: (url: string | null) => unwrap(this.api.PUT('/v1/service/chat', { body: { url } })),
    rotateWebhookSecret: () => unwrap(this.api.POST('/v1/service/webhook/rotate-secret')),
  };

  /** Short-lived user tokens, for apps reading a user's inbox (query role). */
  readonly userTokens = {
    issue: (userId: string, ttlSeconds?: number): Promise<UserToken> =>
      unwrap(
        this.query.POST('/v1/users/{userId}/token', {
          params: { path: { userId } },
          body: ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds },
        }),
      ),
    revoke: (userId: string, before?: Date) =>
      unwrap(
        this.query.POST('/v1/users/{userId}/tokens/revoke', {
          params: { path: { userId } },
          body: before === undefined ? {} : { before: before.toISOString() },
        }),
      ),
  };

  /** A user's inbox (query role), with a key allowed to read inboxes or that user's token. */
  readonly inbox = {
    list: (
      userId: string,
      query: NonNullable<QueryPaths['/v1/users/{userId}/inbox']['get']['parameters']['query']> = {},
    ) => unwrap(this.query.GET('/v1/users/{userId}/inbox', { params: { path: { userId }, query } })),
    /** Every item, newest first, a page at a time as you iterate. */
    all: (
      userId: string,
      filters: { unread?: boolean; archived?: boolean; category?: string } = {},
      pageSize = 20,
    ) =>
      pages(async (cursor) =>
        this.inbox.list(userId, { ...filters, limit: pageSize, ...(cursor === undefined ? {} : { cursor }) }),
      ),
    count: (userId: string) =>
      unwrap(this.query.GET('/v1/users/{userId}/inbox/count', { params: { path: { userId } } })),
    get: (userId: string, notificationId: string): Promise<InboxItem> =>
      unwrap(
        this.query.GET('/v1/users/{userId}/inbox/{notificationId}', {
          params: { path: { userId, notificationId } },
        }),
      ),
    mark: (
      userId: string,
      notificationId: string,
      action: QueryPaths['/v1/users/{userId}/inbox/{notificationId}/{action}']['post']['parameters']['path']['action'],
    ): Promise<InboxItem> =>
      unwrap(
        this.query.POST('/v1/users/{userId}/inbox/{notificationId}/{action}', {
          params: { path: { userId, notificationId, action } },
        }),
      ),
    remove: (userId: string, notificationId: string): Promise<void> =>
      unwrap(
        this.query.DELETE('/v1/users/{userId}/inbox/{notificationId}', {
          params: { path: { userId, notificationId } },
        }),
      ),
    readAll: (userId: string, category?: string) =>
      unwrap(
        this.query.POST('/v1/users/{userId}/inbox/read-all', {
          params: { path: { userId } },
          body: category === undefined ? {} : { category },
        }),
      ),
  };
}
