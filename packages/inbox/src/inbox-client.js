// @ts-check
// Talks to Herald's query role for one user: the inbox API with the user token as a bearer, and
// the realtime stream (Server-Sent Events) with resume. When the token is given as a function,
// a 401 asks it for a fresh token once and retries. Nothing here touches the DOM.

/**
 * An inbox item as the query API presents it.
 * @typedef {{
 *   id: string, category: string, version: number, title?: string, body?: string, url?: string,
 *   status?: string, data?: Record<string, unknown> | null, renderable?: boolean, read: boolean,
 *   seen: boolean, archived: boolean, read_at: string | null, seen_at: string | null,
 *   archived_at?: string | null, created_at: string, updated_at: string
 * }} InboxItem
 * @typedef {{ items: InboxItem[], next_cursor: string | null }} InboxPage
 * @typedef {{ channel: string, category: string, enabled: boolean }} Preference
 * @typedef {{ category: string, service: string, critical: boolean, marketing: boolean }} ListedCategory
 * @typedef {{
 *   preferences: Preference[], no_marketing: boolean, categories?: ListedCategory[],
 *   quiet_hours: { start: string, end: string } | null, time_zone: string | null
 * }} UserPreferences
 * @typedef {{ seq?: number, id?: string | null, item?: InboxItem | null, unread_count?: number }} StreamData
 * @typedef {string | (() => string | Promise<string>)} TokenSource
 * @typedef {'read' | 'unread' | 'archive' | 'delete'} ItemAction
 * @typedef {'connecting' | 'live' | 'offline'} ConnectionState
 */

/**
 * The stream's events the element follows: every kind of inbox change (inboxEventKinds in
 * src/db/stores/inbox-store.ts; the Chromium test checks the two agree), `ready` and `reset`.
 * `revoked` needs no listener: the server closes the stream after it, and reopening finds out why.
 */
export const streamEvents = /** @type {const} */ ([
  'ready',
  'created',
  'updated',
  'read',
  'unread',
  'seen',
  'archived',
  'unarchived',
  'deleted',
  'read_all',
  'seen_all',
  'reset',
]);

export class InboxError extends Error {
  /** @param {number} status 0: Herald could not be reached (or the origin is not allowed) @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'InboxError';
    this.status = status;
  }
}

export class InboxClient {
  /** @type {Promise<string> | undefined} */
  #token;

  /** @param {{ baseUrl: URL, userId: string, token: TokenSource, unreachable: string }} options */
  constructor(options) {
    this.options = options;
    this.root = new URL(`v1/users/${encodeURIComponent(options.userId)}/`, options.baseUrl);
  }

  /** Uses this token (or token function) from the next request on. @param {TokenSource} source */
  setToken(source) {
    this.options.token = source;
    this.#token = undefined;
  }

  /** The current token; `refresh` asks a token function for a new one. @param {boolean} [refresh] */
  token(refresh = false) {
    const source = this.options.token;
    if (typeof source === 'string') return Promise.resolve(source);
    if (this.#token === undefined || refresh) this.#token = Promise.resolve().then(source);
    return this.#token;
  }

  /**
   * Calls the API; resolves to the JSON body (typed by the caller after the API's documented
   * shapes), rejects with InboxError carrying the problem's detail.
   * @param {string} method @param {string} path relative to /v1/users/:userId/ @param {unknown} [body]
   * @returns {Promise<unknown>}
   */
  async request(method, path, body) {
    const first = await this.#send(method, path, body, await this.token());
    const response =
      first.status === 401 && typeof this.options.token === 'function'
        ? await this.#send(method, path, body, await this.token(true))
        : first;
    const json = parseJson(await response.text());
    if (!response.ok)
      throw new InboxError(response.status, problemDetail(json) ?? `HTTP ${String(response.status)}`);
    return json;
  }

  /** @param {string} method @param {string} path @param {unknown} body @param {string} token */
  async #send(method, path, body, token) {
    /** @type {Record<string, string>} */
    const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(new URL(path, this.root), {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch {
      // A network failure, or a CORS refusal: the browser tells the page nothing more.
      throw new InboxError(0, this.options.unreachable);
    }
  }

  /** @param {{ cursor: string | null, unreadOnly: boolean, limit: number }} options */
  async list({ cursor, unreadOnly, limit }) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor !== null) query.set('cursor', cursor);
    if (unreadOnly) query.set('unread', 'true');
    return /** @type {InboxPage} */ (await this.request('GET', `inbox?${query.toString()}`));
  }

  async count() {
    return /** @type {{ unread: number, unseen: number }} */ (await this.request('GET', 'inbox/count'));
  }

  /** The item's new state (read, unread), or undefined (archive, delete). @param {string} id @param {ItemAction} action */
  async act(id, action) {
    const path = `inbox/${encodeURIComponent(id)}`;
    if (action === 'delete') {
      await this.request('DELETE', path);
      return undefined;
    }
    const answer = /** @type {InboxItem | undefined} */ (await this.request('POST', `${path}/${action}`));
    return action === 'archive' ? undefined : answer;
  }

  /** Reports that the user followed the item's link (counted once). @param {string} id */
  async clicked(id) {
    await this.request('POST', `inbox/${encodeURIComponent(id)}/clicked`, {});
  }

  async readAll() {
    return /** @type {{ changed: number }} */ (await this.request('POST', 'inbox/read-all', {}));
  }

  async preferences() {
    return /** @type {UserPreferences} */ (await this.request('GET', 'preferences'));
  }

  /** @param {{ preferences: Preference[], no_marketing: boolean }} body */
  async savePreferences(body) {
    return /** @type {UserPreferences} */ (await this.request('PUT', 'preferences', body));
  }

  /**
   * The stream's URL. EventSource cannot send headers, so the token goes in `access_token`.
   * @param {string | null} lastEventId resume after this event
   */
  async streamUrl(lastEventId) {
    const url = new URL('inbox/stream', this.root);
    url.searchParams.set('access_token', await this.token());
    if (lastEventId !== null) url.searchParams.set('last_event_id', lastEventId);
    return url;
  }
}

/**
 * The realtime stream with resume: EventSource reconnects by itself with Last-Event-ID; when the
 * connection is closed for good (refused, or the server went away), this reopens it after a
 * backoff with the last event id it saw, so nothing in between is missed. A 401 ends it.
 */
export class InboxStream {
  /** @type {EventSource | null} */
  #source = null;
  /** @type {string | null} */
  #lastEventId = null;
  #delayMs = 1000;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #stopped = false;

  /**
   * @param {InboxClient} client
   * @param {{
   *   onEvent: (kind: string, data: StreamData, fresh: boolean) => void,
   *   onState: (state: ConnectionState) => void,
   *   onRefused: (error: InboxError) => void,
   * }} handlers `fresh`: a `ready` on a connection that did not resume, so events may have been missed
   */
  constructor(client, handlers) {
    this.client = client;
    this.handlers = handlers;
  }

  start() {
    this.#stopped = false;
    void this.#open();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#source?.close();
    this.#source = null;
  }

  get isLive() {
    return this.#source?.readyState === EventSource.OPEN;
  }

  async #open() {
    this.#source?.close();
    this.handlers.onState('connecting');
    const resumed = this.#lastEventId !== null;
    let url;
    try {
      url = await this.client.streamUrl(this.#lastEventId);
    } catch (error) {
      this.#closed(error);
      return;
    }
    if (this.#stopped) return;
    const source = new EventSource(url);
    this.#source = source;
    let readySeen = false;
    for (const kind of streamEvents) {
      source.addEventListener(kind, (event) => {
        if (this.#source !== source) return;
        const message = /** @type {MessageEvent<string>} */ (event);
        if (message.lastEventId !== '') this.#lastEventId = message.lastEventId;
        const data = /** @type {StreamData | undefined} */ (parseJson(message.data));
        if (data === undefined) return;
        const fresh = kind === 'ready' && !resumed && !readySeen;
        if (kind === 'ready') {
          readySeen = true;
          this.#delayMs = 1000;
          this.handlers.onState('live');
        }
        this.handlers.onEvent(kind, data, fresh);
      });
    }
    source.addEventListener('error', () => {
      if (this.#source !== source) return;
      if (source.readyState === EventSource.CLOSED) void this.#reopenLater();
      else this.handlers.onState('connecting');
    });
  }

  /** The stream was refused or ended (EventSource gives no status): a 401 ends it, else retry. */
  async #reopenLater() {
    if (this.#stopped) return;
    this.#source?.close();
    this.#source = null;
    this.handlers.onState('offline');
    try {
      // A plain request tells why, and refreshes a token given as a function.
      await this.client.count();
    } catch (error) {
      this.#closed(error);
      return;
    }
    this.#retry();
  }

  /** @param {unknown} error */
  #closed(error) {
    if (this.#stopped) return;
    this.handlers.onState('offline');
    if (error instanceof InboxError && error.status === 401) this.handlers.onRefused(error);
    else this.#retry();
  }

  #retry() {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#open(), this.#delayMs);
    this.#delayMs = Math.min(this.#delayMs * 2, 30_000);
  }
}

/** @param {string} text @returns {unknown} */
function parseJson(text) {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An application/problem+json body's detail, else its title. @param {unknown} body */
function problemDetail(body) {
  if (typeof body !== 'object' || body === null) return undefined;
  const { detail, title } = /** @type {{ detail?: unknown, title?: unknown }} */ (body);
  return typeof detail === 'string' ? detail : typeof title === 'string' ? title : undefined;
}
