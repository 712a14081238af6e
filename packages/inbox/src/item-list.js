// @ts-check
// The list of inbox items: keeps one row per item and updates rows in place (so focus stays
// where it was), and moves focus between items with the arrow keys, Home and End. When the
// focused item leaves the list (archived, deleted), focus moves to the item now in its place.

import { h, safeLink } from './dom.js';

/**
 * @typedef {import('./inbox-client.js').InboxItem} InboxItem
 * @typedef {import('./messages.js').Messages} Messages
 * @typedef {'toggle-read' | 'archive' | 'delete'} RowAction
 */

export class ItemList {
  /** @type {Map<string, HTMLLIElement>} */
  #rows = new Map();
  /** @type {WeakMap<Element, string>} */
  #ids = new WeakMap();
  #rowNumber = 0;

  /**
   * @param {{
   *   messages: Messages, timeFormat: Intl.DateTimeFormat, labelledBy: string,
   *   onAction: (id: string, action: RowAction, button: HTMLButtonElement) => void,
   *   onLinkOpened: (id: string) => void,
   *   onFocusLost: () => void,
   * }} options
   */
  constructor(options) {
    this.options = options;
    this.element = h('ul', {
      class: 'items',
      part: 'list',
      'aria-busy': 'false',
      'aria-labelledby': options.labelledBy,
    });
    this.element.addEventListener('click', (event) => {
      // The item's own link: the browser opens it; the inbox reports the click.
      const link = event.target instanceof Element ? event.target.closest('.item-link a') : null;
      const linkRow = link?.closest('li');
      const linked = linkRow ? this.#ids.get(linkRow) : undefined;
      if (linked !== undefined) {
        options.onLinkOpened(linked);
        return;
      }
      const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
      const li = button?.closest('li');
      const id = li ? this.#ids.get(li) : undefined;
      if (!(button instanceof HTMLButtonElement) || id === undefined) return;
      options.onAction(id, /** @type {RowAction} */ (button.dataset['action']), button);
    });
    this.element.addEventListener('keydown', (event) => this.#move(event));
  }

  /** Brings the rows in line with `items`, keeping existing rows (and their focus) in place. @param {InboxItem[]} items */
  render(items) {
    const wanted = new Set(items.map((i) => i.id));
    const focused = this.#focusedRow();
    const rowsBefore = [...this.element.children];
    let lostAt = -1;
    for (const [id, li] of this.#rows) {
      if (!wanted.has(id)) {
        if (li === focused) lostAt = rowsBefore.indexOf(li);
        li.remove();
        this.#rows.delete(id);
      }
    }
    let at = this.element.firstElementChild;
    for (const item of items) {
      const li = this.#rows.get(item.id) ?? this.#newRow(item.id);
      this.#fill(li, item);
      if (li === at) at = at.nextElementSibling;
      else this.element.insertBefore(li, at);
    }
    if (lostAt >= 0) {
      const rows = this.element.children;
      const next = rows[Math.min(lostAt, rows.length - 1)];
      if (next instanceof HTMLLIElement) this.#focusRow(next);
      else this.options.onFocusLost();
    }
  }

  #focusedRow() {
    const root = /** @type {ShadowRoot | Document} */ (this.element.getRootNode());
    const active = root.activeElement;
    return active instanceof Element && this.element.contains(active) ? active.closest('li') : null;
  }

  /** @param {HTMLLIElement} li */
  #focusRow(li) {
    /** @type {HTMLElement | null} */ (li.querySelector('article'))?.focus();
  }

  /** @param {KeyboardEvent} event */
  #move(event) {
    if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(event.key)) return;
    const current = event.target instanceof Element ? event.target.closest('li') : null;
    if (current === null) return;
    event.preventDefault();
    const rows = /** @type {HTMLLIElement[]} */ ([...this.element.children]);
    const index = rows.indexOf(current);
    /** @type {Record<string, HTMLLIElement | undefined>} */
    const targets = { ArrowDown: rows[index + 1], ArrowUp: rows[index - 1], Home: rows[0], End: rows.at(-1) };
    const target = targets[event.key];
    if (target !== undefined) this.#focusRow(target);
  }

  /** @param {string} id */
  #newRow(id) {
    const m = this.options.messages;
    const titleId = `item-title-${String(++this.#rowNumber)}`;
    /** @param {RowAction} action @param {string} label */
    const button = (action, label) =>
      h('button', { type: 'button', part: 'button', 'data-action': action, 'aria-describedby': titleId }, [
        label,
      ]);
    const li = h('li', { class: 'item' }, [
      h('article', { tabindex: '-1', 'aria-labelledby': titleId }, [
        h('header', { class: 'item-head' }, [
          h('span', { class: 'unread-marker', 'aria-hidden': 'true' }),
          h('h3', { class: 'item-title', id: titleId }),
          h('span', { class: 'visually-hidden item-state' }),
        ]),
        h('p', { class: 'item-body' }),
        h('p', { class: 'item-link' }, [h('a', { rel: 'noopener noreferrer', target: '_blank' }, [m.open])]),
        h('p', { class: 'item-meta' }, [
          h('span', { class: 'item-category' }),
          ' · ',
          h('time', { class: 'item-time' }),
        ]),
        h('div', { class: 'item-actions' }, [
          button('toggle-read', m.markRead),
          button('archive', m.archive),
          button('delete', m.remove),
        ]),
      ]),
    ]);
    this.#ids.set(li, id);
    this.#rows.set(id, li);
    return li;
  }

  /** @param {HTMLLIElement} li @param {InboxItem} item */
  #fill(li, item) {
    const m = this.options.messages;
    li.classList.toggle('is-unread', !item.read);
    li.setAttribute('part', item.read ? 'item' : 'item unread');
    part(li, '.item-title').textContent = item.title || item.category;
    part(li, '.item-state').textContent = item.read ? '' : ` ${m.unreadState}`;
    const body = part(li, '.item-body');
    body.textContent = item.body ?? '';
    body.hidden = !item.body;
    const href = safeLink(item.url);
    const link = part(li, '.item-link');
    link.hidden = href === null;
    if (href !== null) /** @type {HTMLAnchorElement} */ (part(link, 'a')).href = href;
    part(li, '.item-category').textContent = item.status
      ? `${item.category} · ${item.status}`
      : item.category;
    const time = /** @type {HTMLTimeElement} */ (part(li, '.item-time'));
    time.dateTime = item.created_at;
    time.textContent = this.options.timeFormat.format(new Date(item.created_at));
    part(li, '[data-action="toggle-read"]').textContent = item.read ? m.markUnread : m.markRead;
  }
}

/** @param {Element} root @param {string} selector */
function part(root, selector) {
  const found = root.querySelector(selector);
  if (!(found instanceof HTMLElement)) throw new Error(`${selector} is missing from the item row`);
  return found;
}
