// @ts-check
// <herald-inbox>: a user's Herald inbox as a custom element, for any page or framework. It lists
// the user's items with their unread count, marks them read or unread, archives and deletes
// them, marks all read, edits the user's preferences, and follows the realtime stream, resuming
// after a disconnect without missing events. New items are announced in an ARIA live region.
// Plain ES module with no dependencies; the query role serves it as it is (README.md).

import { h, whileBusy } from './dom.js';
import { InboxClient, InboxError, InboxStream } from './inbox-client.js';
import { InboxState } from './inbox-state.js';
import { ItemList } from './item-list.js';
import { messagesFor } from './messages.js';
import { PreferencesPanel } from './preferences-panel.js';
import { inboxStyleSheet } from './styles.js';
import { buildInboxView } from './inbox-view.js';

/**
 * @typedef {import('./inbox-client.js').InboxItem} InboxItem
 * @typedef {import('./inbox-client.js').StreamData} StreamData
 * @typedef {import('./inbox-client.js').TokenSource} TokenSource
 * @typedef {import('./inbox-client.js').ItemAction} ItemAction
 * @typedef {import('./inbox-client.js').ConnectionState} ConnectionState
 * @typedef {import('./item-list.js').RowAction} RowAction
 * @typedef {import('./messages.js').Messages} Messages
 * @typedef {import('./inbox-view.js').InboxView} InboxView
 */

const pageSize = 20;
/** Announcements kept in the live region (older ones have been read out). */
const announcementsKept = 3;

export class HeraldInbox extends HTMLElement {
  static observedAttributes = ['base-url', 'user-id', 'locale'];

  /** @type {TokenSource | null} */
  #token = null;
  #root = this.attachShadow({ mode: 'open' });
  /** @type {{ view: InboxView, list: ItemList, panel: PreferencesPanel, messages: Messages } | null} */
  #ui = null;
  /** @type {InboxClient | null} */
  #client = null;
  /** @type {InboxStream | null} */
  #stream = null;
  /** The last session ended with the token refused: a new token starts a new one. */
  #refused = false;
  #state = new InboxState();
  #listLoading = false;
  /** Bumped by every list (re)load and every new session, so an older response is dropped. */
  #generation = 0;
  /** Stream events that arrive while a page of the list loads, applied after it in order. @type {[string, StreamData][] | null} */
  #held = null;
  /** @type {ConnectionState} */
  #connection = 'offline';

  constructor() {
    super();
    this.#root.adoptedStyleSheets = [inboxStyleSheet()];
  }

  /** The query role's base URL, resolved against the document (default: the document's directory). */
  get baseUrl() {
    const url = new URL(this.getAttribute('base-url') ?? '.', document.baseURI);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return url.href;
  }
  set baseUrl(value) {
    this.setAttribute('base-url', value);
  }

  get userId() {
    return this.getAttribute('user-id') ?? '';
  }
  set userId(value) {
    this.setAttribute('user-id', value);
  }

  get locale() {
    return this.getAttribute('locale');
  }
  set locale(value) {
    if (value === null) this.removeAttribute('locale');
    else this.setAttribute('locale', value);
  }

  /** The user token: a string, or a function returning one (called again when Herald answers 401). */
  get token() {
    return this.#token;
  }
  set token(value) {
    this.#token = value;
    // A refreshed token for a running session is used from the next request on.
    if (this.#client !== null && value !== null && !this.#refused) this.#client.setToken(value);
    else this.#restart();
  }

  /** The unread count shown. */
  get unreadCount() {
    return this.#state.unread;
  }

  /** Reloads the list and the unread count. */
  refresh() {
    if (this.#client === null) return Promise.resolve();
    return Promise.all([this.#loadList(), this.#refreshCount()]).then(() => undefined);
  }

  connectedCallback() {
    if (this.#ui === null) this.#build();
    this.#restart();
  }

  disconnectedCallback() {
    this.#stop();
  }

  /** @param {string} name @param {string | null} before @param {string | null} after */
  attributeChangedCallback(name, before, after) {
    if (before === after || !this.isConnected) return;
    if (name === 'locale') {
      this.#build();
      this.#render();
      return;
    }
    this.#restart();
  }

  #build() {
    const messages = messagesFor(this.locale);
    const timeFormat = new Intl.DateTimeFormat(this.locale ?? undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
    });
    const list = new ItemList({
      messages,
      timeFormat,
      labelledBy: 'heading',
      onAction: (id, action, button) => this.#onRowAction(id, action, button),
      onLinkOpened: (id) => void this.#reportClick(id),
      onFocusLost: () => this.#ui?.view.heading.focus(),
    });
    const panel = new PreferencesPanel({
      messages,
      onError: (error) => this.#report(error),
      onClose: () => this.#closePreferences(true),
    });
    const view = buildInboxView(this.#root, messages, list, panel);
    this.#ui = { view, list, panel, messages };
    view.unreadOnly.addEventListener('change', () => {
      this.#state.unreadOnly = view.unreadOnly.checked;
      void this.#loadList();
    });
    view.readAll.addEventListener('click', () => void this.#readAll());
    view.loadMore.addEventListener('click', () => void this.#loadMoreItems());
    view.preferences.addEventListener('click', () => {
      if (panel.element.hidden) this.#openPreferences();
      else this.#closePreferences(false);
    });
    view.unreadOnly.checked = this.#state.unreadOnly;
    this.#showCount(false);
    this.#showConnection();
  }

  // ---- session ----

  #stop() {
    this.#stream?.stop();
    this.#stream = null;
    this.#client = null;
    if (this.#connection !== 'offline') this.#setConnection('offline');
    this.#generation++;
    this.#listLoading = false;
    this.#held = null;
  }

  /** Starts over for the current base URL, user and token (when all are set and the element is in a page). */
  #restart() {
    this.#stop();
    this.#refused = false;
    this.#state.reset();
    this.#hideMessage();
    this.#ui?.panel.close();
    this.#render();
    const token = this.#token;
    if (!this.isConnected || this.#ui === null || token === null || this.userId === '') return;
    const client = new InboxClient({
      baseUrl: new URL(this.baseUrl),
      userId: this.userId,
      token,
      unreachable: this.#ui.messages.unreachable,
    });
    this.#client = client;
    const stream = new InboxStream(client, {
      onEvent: (kind, data, fresh) => this.#onStreamEvent(kind, data, fresh),
      onState: (state) => this.#setConnection(state),
      onRefused: (error) => this.#report(error),
    });
    this.#stream = stream;
    this.#refreshCount().then(
      () => {
        if (this.#stream === stream) stream.start();
      },
      (/** @type {unknown} */ error) => {
        this.#report(error);
        if (this.#stream === stream && !this.#refused) stream.start();
      },
    );
  }

  /** @param {string} kind @param {StreamData} data @param {boolean} fresh */
  #onStreamEvent(kind, data, fresh) {
    if (kind === 'created' && data.item) this.#announce(data.item);
    // A connection that did not resume may have missed events: load the list anew.
    if (fresh) void this.#loadList();
    if (this.#held !== null) this.#held.push([kind, data]);
    else {
      this.#applyEvent(kind, data);
      this.#render();
    }
  }

  /** @param {string} kind @param {StreamData} data */
  #applyEvent(kind, data) {
    const before = this.#state.unread;
    if (this.#state.apply(kind, data)) void this.#loadList();
    if (this.#state.unread !== before) this.#showCount();
  }

  // ---- list ----

  /** Replaces the list with its first page. */
  #loadList() {
    return this.#loadPage(null);
  }

  #loadMoreItems() {
    const cursor = this.#state.nextCursor;
    if (cursor === null || this.#listLoading) return Promise.resolve();
    return this.#loadPage(cursor);
  }

  /** The first page (a new generation: older loads are dropped), or the page after `cursor`. @param {string | null} cursor */
  async #loadPage(cursor) {
    const client = this.#client;
    if (client === null) return;
    const generation = cursor === null ? ++this.#generation : this.#generation;
    this.#held = [];
    this.#listLoading = true;
    this.#setBusy(true);
    try {
      const page = await client.list({ cursor, unreadOnly: this.#state.unreadOnly, limit: pageSize });
      if (generation !== this.#generation) return;
      this.#state.setPage(page, cursor !== null);
    } catch (error) {
      if (generation === this.#generation) this.#report(error);
    } finally {
      if (generation === this.#generation) this.#pageDone();
    }
  }

  #pageDone() {
    this.#listLoading = false;
    this.#setBusy(false);
    const events = this.#held ?? [];
    this.#held = null;
    for (const [kind, data] of events) this.#applyEvent(kind, data);
    this.#render();
  }

  /** @param {boolean} busy */
  #setBusy(busy) {
    if (this.#ui === null) return;
    this.#ui.list.element.setAttribute('aria-busy', String(busy));
    this.#ui.view.loadMore.setAttribute('aria-disabled', String(busy));
  }

  async #refreshCount() {
    const client = this.#client;
    if (client === null) return;
    const count = await client.count();
    if (this.#client !== client) return;
    const before = this.#state.unread;
    this.#state.setCount(count.unread, null);
    if (this.#state.unread !== before) this.#showCount();
  }

  /** Shows the unread count and, unless only the view was rebuilt, tells the page. */
  #showCount(changed = true) {
    const unread = this.#state.unread;
    if (this.#ui !== null) {
      this.#ui.view.badge.textContent = String(unread);
      this.#ui.view.unread.classList.toggle('is-zero', unread === 0);
    }
    if (changed) this.#emit('herald-inbox-unread', { unread });
  }

  // ---- actions ----

  /** @param {string} id @param {RowAction} kind @param {HTMLButtonElement} button */
  #onRowAction(id, kind, button) {
    const item = this.#state.items.find((i) => i.id === id);
    if (item === undefined) return;
    /** @type {ItemAction} */
    const action = kind === 'toggle-read' ? (item.read ? 'unread' : 'read') : kind;
    void whileBusy(button, () => this.#act(id, action));
  }

  /** Tells Herald the user followed the item's link; a failed report changes nothing on the page. @param {string} id */
  async #reportClick(id) {
    try {
      await this.#client?.clicked(id);
    } catch {
      // The report is for the figures; the user is on their way to the link.
    }
  }

  /** @param {string} id @param {ItemAction} action */
  async #act(id, action) {
    const client = this.#client;
    if (client === null) return;
    try {
      const answer = await client.act(id, action);
      if (client !== this.#client) return;
      if (action === 'read' || action === 'unread') this.#state.setRead(id, action === 'read', answer);
      else this.#state.remove(id);
      this.#render();
      if (this.#stream?.isLive !== true) await this.#refreshCount();
    } catch (error) {
      // Gone already (deleted elsewhere): drop it here too.
      if (error instanceof InboxError && error.status === 404) {
        this.#state.remove(id);
        this.#render();
      }
      this.#report(error);
    }
  }

  async #readAll() {
    const client = this.#client;
    const button = this.#ui?.view.readAll;
    if (client === null || button === undefined) return;
    await whileBusy(button, async () => {
      try {
        await client.readAll();
        if (client !== this.#client) return;
        this.#state.markAllRead();
        this.#render();
        if (this.#stream?.isLive !== true) await this.#refreshCount();
      } catch (error) {
        this.#report(error);
      }
    });
  }

  #openPreferences() {
    if (this.#ui === null || this.#client === null) return;
    this.#ui.view.preferences.setAttribute('aria-expanded', 'true');
    void this.#ui.panel.open(this.#client);
  }

  /** @param {boolean} refocus */
  #closePreferences(refocus) {
    if (this.#ui === null) return;
    this.#ui.panel.close();
    this.#ui.view.preferences.setAttribute('aria-expanded', 'false');
    if (refocus) this.#ui.view.preferences.focus();
  }

  // ---- rendering and reporting ----

  #render() {
    if (this.#ui === null) return;
    const { view, list } = this.#ui;
    const { items, listLoaded, nextCursor } = this.#state;
    list.render(items);
    view.empty.hidden = !listLoaded || items.length > 0;
    view.loadMore.hidden = nextCursor === null;
  }

  /** @param {ConnectionState} state */
  #setConnection(state) {
    this.#connection = state;
    this.#showConnection();
    // Without realtime, still show the list.
    if (state === 'offline' && !this.#state.listLoaded && !this.#listLoading) void this.#loadList();
    this.#emit('herald-inbox-connection', { state });
  }

  #showConnection() {
    if (this.#ui === null) return;
    const { view, messages } = this.#ui;
    view.connection.dataset['state'] = this.#connection;
    view.connection.textContent = messages.connection[this.#connection];
  }

  /** @param {InboxItem} item */
  #announce(item) {
    this.#emit('herald-inbox-item', { item });
    if (this.#ui === null) return;
    const { announcer } = this.#ui.view;
    announcer.append(h('p', {}, [this.#ui.messages.newItem(item.title || item.category)]));
    while (announcer.childElementCount > announcementsKept) announcer.firstElementChild?.remove();
  }

  /** @param {unknown} error */
  #report(error) {
    const status = error instanceof InboxError ? error.status : 0;
    const message = error instanceof Error ? error.message : String(error);
    if (status === 401) {
      this.#refused = true;
      this.#stream?.stop();
      this.#setConnection('offline');
    }
    if (this.#ui !== null) {
      this.#ui.view.message.textContent = message;
      this.#ui.view.message.hidden = false;
    }
    this.#emit(status === 401 ? 'herald-inbox-unauthenticated' : 'herald-inbox-error', { status, message });
  }

  #hideMessage() {
    if (this.#ui === null) return;
    this.#ui.view.message.hidden = true;
    this.#ui.view.message.textContent = '';
  }

  /** @param {string} type @param {unknown} detail */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (customElements.get('herald-inbox') === undefined) customElements.define('herald-inbox', HeraldInbox);
