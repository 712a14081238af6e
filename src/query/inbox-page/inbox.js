// @ts-check
// Herald's inbox page: logs in with a user token, lists the user's in-app notifications, changes
// their state through the query API and follows the realtime stream. Plain browser JS, no build.
// Data is rendered with textContent only. The token lives in this tab's sessionStorage and is put
// in a URL only for the stream, because EventSource cannot send an Authorization header.

/**
 * @typedef {{
 *   id: string, category: string, version: number, title?: string, body?: string, url?: string,
 *   action_url?: string, status?: string, read: boolean, seen: boolean, archived: boolean,
 *   read_at: string | null, seen_at: string | null, created_at: string, updated_at: string
 * }} Item
 * @typedef {{ user: string, token: string }} Session
 * @typedef {{ seq?: number, id?: string | null, item?: Item | null, unread_count?: number }} StreamData
 * @typedef {'read' | 'unread' | 'archive' | 'delete'} Action
 */

const pageSize = 20;
const storageKeys = { user: 'herald.inbox.user', token: 'herald.inbox.token' };
const streamEvents = [
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
];
// The API is served beside the page; relative, so Herald behind a path prefix still works.
const apiBase = new URL('.', location.href);

/** @param {string} id */
function byId(id) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found;
}

const view = {
  unread: byId('unread'),
  unreadCount: byId('unread-count'),
  connection: byId('connection'),
  signedIn: byId('signed-in'),
  signedInUser: byId('signed-in-user'),
  logOut: byId('log-out'),
  message: byId('message'),
  login: /** @type {HTMLFormElement} */ (byId('login')),
  loginUser: /** @type {HTMLInputElement} */ (byId('login-user')),
  loginToken: /** @type {HTMLInputElement} */ (byId('login-token')),
  inbox: byId('inbox'),
  unreadOnly: /** @type {HTMLInputElement} */ (byId('unread-only')),
  readAll: /** @type {HTMLButtonElement} */ (byId('read-all')),
  items: byId('items'),
  empty: byId('empty'),
  loadMore: /** @type {HTMLButtonElement} */ (byId('load-more')),
  template: /** @type {HTMLTemplateElement} */ (byId('item-template')),
};

/** @type {Session | null} */
let session = null;
/** Newest first, as the API lists them. @type {Item[]} */
let items = [];
/** @type {string | null} */
let nextCursor = null;
let listLoaded = false;
let listLoading = false;
/** Bumped by every list (re)load, so an older response is dropped. */
let listGeneration = 0;
/** Stream events that arrive while a page of the list loads, applied after it in order. @type {[string, StreamData][] | null} */
let held = null;
/** The stream sequence number of the shown unread count. */
let countSeq = -1;
/** @type {EventSource | null} */
let stream = null;
let reconnectDelayMs = 1000;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let reconnectTimer;
/** @type {Map<string, HTMLLIElement>} */
const rows = new Map();
/** @type {WeakMap<Element, string>} */
const rowIds = new WeakMap();
let rowNumber = 0;

class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- API ----

function inboxPath() {
  if (session === null) throw new ApiError(401, 'Log in first.');
  return `v1/users/${encodeURIComponent(session.user)}/inbox`;
}

/**
 * Calls the query API with the user token; resolves to the JSON body (typed by the caller after
 * the API's documented shapes), rejects with ApiError carrying the problem's detail.
 * @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<unknown>}
 */
async function api(method, path, body) {
  if (session === null) throw new ApiError(401, 'Log in first.');
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${session.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, apiBase), {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'Herald cannot be reached.');
  }
  const json = parseJson(await response.text());
  if (!response.ok) throw new ApiError(response.status, problemDetail(json) ?? `HTTP ${response.status}`);
  return json;
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

/** @param {string | null} cursor @returns {Promise<{ items: Item[], next_cursor: string | null }>} */
async function fetchPage(cursor) {
  return /** @type {{ items: Item[], next_cursor: string | null }} */ (await api('GET', listPath(cursor)));
}

/** @param {string | null} cursor */
function listPath(cursor) {
  const query = new URLSearchParams({ limit: String(pageSize) });
  if (cursor !== null) query.set('cursor', cursor);
  if (view.unreadOnly.checked) query.set('unread', 'true');
  return `${inboxPath()}?${query.toString()}`;
}

/** Replaces the list with its first page. */
async function loadList() {
  const generation = ++listGeneration;
  held = [];
  listLoading = true;
  view.items.setAttribute('aria-busy', 'true');
  view.loadMore.disabled = true;
  try {
    const page = await fetchPage(null);
    if (generation !== listGeneration) return;
    items = page.items;
    nextCursor = page.next_cursor;
    listLoaded = true;
  } catch (error) {
    if (generation === listGeneration) report(error);
  } finally {
    if (generation === listGeneration) {
      listLoading = false;
      view.items.setAttribute('aria-busy', 'false');
      view.loadMore.disabled = false;
      releaseHeld();
    }
  }
}

async function loadMore() {
  if (nextCursor === null || listLoading) return;
  const generation = listGeneration;
  held = [];
  listLoading = true;
  view.loadMore.disabled = true;
  try {
    const page = await fetchPage(nextCursor);
    if (generation !== listGeneration) return;
    for (const item of page.items) if (!items.some((i) => i.id === item.id)) items.push(item);
    nextCursor = page.next_cursor;
  } catch (error) {
    if (generation === listGeneration) report(error);
  } finally {
    if (generation === listGeneration) {
      listLoading = false;
      view.loadMore.disabled = false;
      releaseHeld();
    }
  }
}

async function refreshCount() {
  const count = /** @type {{ unread: number, unseen: number }} */ (await api('GET', `${inboxPath()}/count`));
  setCount(count.unread, null);
}

// ---- state changes ----

/** @param {number} unread @param {number | null} seq null: from a plain read, always shown */
function setCount(unread, seq) {
  if (seq !== null) {
    if (seq < countSeq) return;
    countSeq = seq;
  }
  view.unreadCount.textContent = String(unread);
  view.unread.classList.toggle('is-zero', unread === 0);
}

/** @param {Item} a @param {Item} b newest first, as the API orders them */
function compareItems(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Puts an item's latest state in the list, or takes it out when the list should not show it. */
/** @param {Item} item */
function upsert(item) {
  const index = items.findIndex((i) => i.id === item.id);
  const shown = !item.archived && !(view.unreadOnly.checked && item.read);
  if (index >= 0) {
    if (shown) items[index] = item;
    else items.splice(index, 1);
    return;
  }
  if (!shown) return;
  const at = items.findIndex((i) => compareItems(item, i) < 0);
  // Past the last loaded item while more pages remain: "Load more" brings it in its place.
  if (at < 0 && nextCursor !== null) return;
  items.splice(at < 0 ? items.length : at, 0, item);
}

/** @param {string} id */
function remove(id) {
  items = items.filter((i) => i.id !== id);
}

/** @param {string} kind @param {StreamData} data */
function applyEvent(kind, data) {
  const forced = kind === 'ready' || kind === 'reset';
  if (typeof data.unread_count === 'number') {
    if (forced) countSeq = -1;
    setCount(data.unread_count, typeof data.seq === 'number' ? data.seq : null);
  }
  switch (kind) {
    case 'created':
    case 'updated':
    case 'read':
    case 'unread':
    case 'seen':
    case 'unarchived':
      if (data.item) upsert(data.item);
      break;
    case 'archived':
    case 'deleted':
      if (typeof data.id === 'string') remove(data.id);
      break;
    case 'read_all':
      // The event does not say which category was read; only "nothing unread" is certain.
      if (data.unread_count === 0) markAllRead();
      else void loadList();
      break;
    case 'seen_all':
      break;
    case 'reset':
      void loadList();
      break;
    default:
      break;
  }
}

function markAllRead() {
  const now = new Date().toISOString();
  items = view.unreadOnly.checked ? [] : items.map((i) => (i.read ? i : { ...i, read: true, read_at: now }));
}

function releaseHeld() {
  const events = held ?? [];
  held = null;
  for (const [kind, data] of events) applyEvent(kind, data);
  render();
}

// ---- realtime ----

function openStream() {
  closeStream();
  const url = new URL(`${inboxPath()}/stream`, apiBase);
  url.searchParams.set('access_token', session?.token ?? '');
  const source = new EventSource(url);
  stream = source;
  let ready = false;
  setConnection('connecting');
  for (const kind of streamEvents) {
    source.addEventListener(kind, (event) => {
      if (stream !== source) return;
      const data = /** @type {StreamData | undefined} */ (
        parseJson(/** @type {MessageEvent<string>} */ (event).data)
      );
      if (data === undefined) return;
      if (kind === 'ready') {
        setConnection('live');
        reconnectDelayMs = 1000;
        // A new connection may have missed events (EventSource's own reconnects are replayed).
        if (!ready) {
          ready = true;
          void loadList();
        }
      }
      if (held !== null) held.push([kind, data]);
      else {
        applyEvent(kind, data);
        render();
      }
    });
  }
  source.addEventListener('error', () => {
    if (stream !== source) return;
    // Show the list even when realtime is unavailable.
    if (!listLoaded && !listLoading) void loadList();
    if (source.readyState === EventSource.CLOSED) {
      setConnection('offline');
      void reconnectLater();
    } else setConnection('connecting');
  });
}

/** The stream was refused (EventSource gives no status): a 401 means log in again, else retry. */
async function reconnectLater() {
  closeStream();
  try {
    await refreshCount();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      report(error);
      return;
    }
  }
  if (session === null) return;
  reconnectTimer = setTimeout(openStream, reconnectDelayMs);
  reconnectDelayMs = Math.min(reconnectDelayMs * 2, 30_000);
}

function closeStream() {
  clearTimeout(reconnectTimer);
  stream?.close();
  stream = null;
}

/** @param {'connecting' | 'live' | 'offline'} state */
function setConnection(state) {
  view.connection.dataset['state'] = state;
  view.connection.textContent = { connecting: 'Connecting…', live: 'Live', offline: 'Offline' }[state];
}

// ---- actions ----

/** @param {string} id @param {Action} action */
async function act(id, action) {
  const path = `${inboxPath()}/${encodeURIComponent(id)}`;
  try {
    switch (action) {
      case 'read':
      case 'unread': {
        // The answer is the item's new state; should it be anything else, patch the shown one.
        const answer = /** @type {Item | undefined} */ (await api('POST', `${path}/${action}`));
        const current = items.find((i) => i.id === id);
        if (answer?.id === id) upsert(answer);
        else if (current !== undefined)
          upsert({
            ...current,
            read: action === 'read',
            read_at: action === 'read' ? new Date().toISOString() : null,
          });
        break;
      }
      case 'archive':
        await api('POST', `${path}/archive`);
        remove(id);
        break;
      case 'delete':
        await api('DELETE', path);
        remove(id);
        break;
    }
    render();
    if (stream?.readyState !== EventSource.OPEN) await refreshCount();
  } catch (error) {
    // Gone already (deleted elsewhere): drop it here too.
    if (error instanceof ApiError && error.status === 404) {
      remove(id);
      render();
    }
    report(error);
  }
}

async function readAll() {
  view.readAll.disabled = true;
  try {
    await api('POST', `${inboxPath()}/read-all`, {});
    markAllRead();
    render();
    if (stream?.readyState !== EventSource.OPEN) await refreshCount();
  } catch (error) {
    report(error);
  } finally {
    view.readAll.disabled = false;
  }
}

// ---- rendering ----

/** @param {string} text */
function showMessage(text) {
  view.message.textContent = text;
  view.message.hidden = false;
}

function hideMessage() {
  view.message.hidden = true;
  view.message.textContent = '';
}

/** @param {unknown} error */
function report(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(`Please log in again: ${error.message}`, { keepUser: true });
    return;
  }
  showMessage(error instanceof Error ? error.message : String(error));
}

/** @param {string | undefined} value only http(s) links are shown */
function safeLink(value) {
  if (typeof value !== 'string' || value === '') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** @param {Element} root @param {string} selector */
function part(root, selector) {
  const found = root.querySelector(selector);
  if (!(found instanceof HTMLElement)) throw new Error(`${selector} is missing from the item template`);
  return found;
}

/** @param {string} id */
function newRow(id) {
  const fragment = /** @type {DocumentFragment} */ (view.template.content.cloneNode(true));
  const li = /** @type {HTMLLIElement} */ (fragment.firstElementChild);
  const titleId = `item-title-${++rowNumber}`;
  part(li, '.item-title').id = titleId;
  for (const button of li.querySelectorAll('button')) button.setAttribute('aria-describedby', titleId);
  rowIds.set(li, id);
  rows.set(id, li);
  return li;
}

/** @param {HTMLLIElement} li @param {Item} item */
function fillRow(li, item) {
  li.classList.toggle('is-unread', !item.read);
  part(li, '.item-title').textContent = item.title || item.category;
  part(li, '.item-state').textContent = item.read ? '' : ' (unread)';
  const body = part(li, '.item-body');
  body.textContent = item.body ?? '';
  body.hidden = !item.body;
  const href = safeLink(item.url ?? item.action_url);
  const link = part(li, '.item-link');
  link.hidden = href === null;
  if (href !== null) /** @type {HTMLAnchorElement} */ (part(link, 'a')).href = href;
  part(li, '.item-category').textContent = item.status ? `${item.category} · ${item.status}` : item.category;
  const time = /** @type {HTMLTimeElement} */ (part(li, '.item-time'));
  time.dateTime = item.created_at;
  time.textContent = timeFormat.format(new Date(item.created_at));
  part(li, '[data-action="toggle-read"]').textContent = item.read ? 'Mark unread' : 'Mark read';
}

/** Brings the list in line with `items`, keeping existing rows (and their focus) in place. */
function render() {
  const wanted = new Set(items.map((i) => i.id));
  for (const [id, li] of rows) {
    if (!wanted.has(id)) {
      li.remove();
      rows.delete(id);
    }
  }
  let at = view.items.firstElementChild;
  for (const item of items) {
    const li = rows.get(item.id) ?? newRow(item.id);
    fillRow(li, item);
    if (li === at) at = at.nextElementSibling;
    else view.items.insertBefore(li, at);
  }
  view.empty.hidden = !listLoaded || items.length > 0;
  view.loadMore.hidden = nextCursor === null;
}

// ---- session ----

/** @param {Session} next */
function signIn(next) {
  session = next;
  sessionStorage.setItem(storageKeys.user, next.user);
  sessionStorage.setItem(storageKeys.token, next.token);
  view.login.hidden = true;
  view.loginToken.value = '';
  view.signedInUser.textContent = `Signed in as ${next.user}`;
  for (const shown of [view.signedIn, view.unread, view.connection, view.inbox]) shown.hidden = false;
  hideMessage();
  items = [];
  nextCursor = null;
  listLoaded = false;
  countSeq = -1;
  render();
  refreshCount().then(openStream, report);
}

/** @param {string | null} message @param {{ keepUser?: boolean }} [options] */
function signOut(message, options = {}) {
  closeStream();
  listGeneration++;
  listLoading = false;
  held = null;
  const user = session?.user ?? sessionStorage.getItem(storageKeys.user) ?? '';
  session = null;
  sessionStorage.removeItem(storageKeys.token);
  if (!options.keepUser) sessionStorage.removeItem(storageKeys.user);
  items = [];
  nextCursor = null;
  listLoaded = false;
  render();
  for (const shown of [view.signedIn, view.unread, view.connection, view.inbox]) shown.hidden = true;
  view.login.hidden = false;
  view.loginUser.value = options.keepUser ? user : '';
  view.loginToken.value = '';
  if (message === null) hideMessage();
  else showMessage(message);
  (view.loginUser.value === '' ? view.loginUser : view.loginToken).focus();
}

/** `#user=…&token=…` logs in once; it is taken out of the address bar (and history) at once. */
function takeFragmentSession() {
  if (location.hash === '') return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const user = params.get('user');
  const token = params.get('token');
  if (user === null && token === null) return null;
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  return user && token ? { user, token } : null;
}

// ---- wiring ----

view.login.addEventListener('submit', (event) => {
  event.preventDefault();
  const user = view.loginUser.value.trim();
  const token = view.loginToken.value.trim().replace(/^Bearer\s+/i, '');
  if (user === '' || token === '') return;
  signIn({ user, token });
});
view.logOut.addEventListener('click', () => signOut(null));
window.addEventListener('hashchange', () => {
  const next = takeFragmentSession();
  if (next !== null) signIn(next);
});
view.unreadOnly.addEventListener('change', () => void loadList());
view.readAll.addEventListener('click', () => void readAll());
view.loadMore.addEventListener('click', () => void loadMore());
view.items.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
  const li = button?.closest('li');
  const id = li ? rowIds.get(li) : undefined;
  if (!(button instanceof HTMLButtonElement) || id === undefined) return;
  const item = items.find((i) => i.id === id);
  if (item === undefined) return;
  const kind = button.dataset['action'];
  /** @type {Action} */
  const action =
    kind === 'toggle-read' ? (item.read ? 'unread' : 'read') : kind === 'archive' ? 'archive' : 'delete';
  button.disabled = true;
  void act(id, action).finally(() => {
    button.disabled = false;
  });
});

const fromFragment = takeFragmentSession();
const storedUser = sessionStorage.getItem(storageKeys.user);
const storedToken = sessionStorage.getItem(storageKeys.token);
if (fromFragment !== null) signIn(fromFragment);
else if (storedUser !== null && storedToken !== null) signIn({ user: storedUser, token: storedToken });
else signOut(null, { keepUser: true });
