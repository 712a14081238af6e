// @ts-check
// What the element shows, kept apart from the DOM: the loaded items (newest first, as the API
// lists them), the next page's cursor and the unread count, and how each stream event changes
// them. The count carries the stream's sequence number, so an older event never undoes a newer one.

/**
 * @typedef {import('./inbox-client.js').InboxItem} InboxItem
 * @typedef {import('./inbox-client.js').InboxPage} InboxPage
 * @typedef {import('./inbox-client.js').StreamData} StreamData
 */

export class InboxState {
  /** @type {InboxItem[]} */
  items = [];
  /** @type {string | null} */
  nextCursor = null;
  listLoaded = false;
  /** The list shows unread items only. */
  unreadOnly = false;
  unread = 0;
  /** The stream sequence number of the unread count. */
  #countSeq = -1;

  reset() {
    this.items = [];
    this.nextCursor = null;
    this.listLoaded = false;
    this.#countSeq = -1;
  }

  /** @param {InboxPage} page @param {boolean} append a next page rather than the first */
  setPage(page, append) {
    if (append) {
      for (const item of page.items) if (!this.items.some((i) => i.id === item.id)) this.items.push(item);
    } else this.items = page.items;
    this.nextCursor = page.next_cursor;
    this.listLoaded = true;
  }

  /** @param {number} unread @param {number | null} seq null: from a plain read, always taken */
  setCount(unread, seq) {
    if (seq !== null) {
      if (seq < this.#countSeq) return;
      this.#countSeq = seq;
    }
    this.unread = unread;
  }

  /** Puts an item's latest state in the list, or takes it out when the list should not show it. @param {InboxItem} item */
  upsert(item) {
    const index = this.items.findIndex((i) => i.id === item.id);
    const shown = !item.archived && !(this.unreadOnly && item.read);
    if (index >= 0) {
      if (shown) this.items[index] = item;
      else this.items.splice(index, 1);
      return;
    }
    if (!shown) return;
    const at = this.items.findIndex((i) => compareItems(item, i) < 0);
    // Past the last loaded item while more pages remain: "Load more" brings it in its place.
    if (at < 0 && this.nextCursor !== null) return;
    this.items.splice(at < 0 ? this.items.length : at, 0, item);
  }

  /** @param {string} id */
  remove(id) {
    this.items = this.items.filter((i) => i.id !== id);
  }

  /** A read or unread answer: the item's new state, or (should it be anything else) the shown one patched. @param {string} id @param {boolean} read @param {InboxItem | undefined} answer */
  setRead(id, read, answer) {
    const current = this.items.find((i) => i.id === id);
    if (answer?.id === id) this.upsert(answer);
    else if (current !== undefined)
      this.upsert({ ...current, read, read_at: read ? new Date().toISOString() : null });
  }

  markAllRead() {
    const now = new Date().toISOString();
    this.items = this.unreadOnly
      ? []
      : this.items.map((i) => (i.read ? i : { ...i, read: true, read_at: now }));
  }

  /**
   * Applies one stream event; true when the list must be loaded anew instead.
   * @param {string} kind @param {StreamData} data
   */
  apply(kind, data) {
    if (typeof data.unread_count === 'number') {
      if (kind === 'ready' || kind === 'reset') this.#countSeq = -1;
      this.setCount(data.unread_count, typeof data.seq === 'number' ? data.seq : null);
    }
    switch (kind) {
      case 'created':
      case 'updated':
      case 'read':
      case 'unread':
      case 'seen':
      case 'unarchived':
        if (data.item) this.upsert(data.item);
        return false;
      case 'archived':
      case 'deleted':
        if (typeof data.id === 'string') this.remove(data.id);
        return false;
      case 'read_all':
        // The event does not say which category was read; only "nothing unread" is certain.
        if (data.unread_count !== 0) return true;
        this.markAllRead();
        return false;
      case 'reset':
        return true;
      default:
        return false;
    }
  }
}

/** @param {InboxItem} a @param {InboxItem} b newest first, as the API orders them */
function compareItems(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
