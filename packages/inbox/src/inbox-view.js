// @ts-check
// The element's frame in its shadow root: heading, unread badge, connection state, the tools
// (unread only, mark all read, preferences), the error message, the live region that announces
// new items, then the preferences panel and the list.

import { h } from './dom.js';

/**
 * @typedef {import('./messages.js').Messages} Messages
 * @typedef {import('./item-list.js').ItemList} ItemList
 * @typedef {import('./preferences-panel.js').PreferencesPanel} PreferencesPanel
 */

/**
 * Fills the shadow root for one locale; returns the parts the element updates.
 * @param {ShadowRoot} root @param {Messages} m @param {ItemList} list @param {PreferencesPanel} panel
 */
export function buildInboxView(root, m, list, panel) {
  const badge = h('span', { class: 'badge', id: 'unread-count', part: 'badge' }, ['0']);
  const view = {
    badge,
    unread: h('p', { class: 'unread' }, [badge, ` ${m.unread}`]),
    connection: h('p', { class: 'connection', id: 'connection', 'data-state': 'offline' }, [
      m.connection.offline,
    ]),
    unreadOnly: h('input', { type: 'checkbox' }),
    readAll: h('button', { type: 'button', part: 'button' }, [m.readAll]),
    preferences: h(
      'button',
      { type: 'button', part: 'button', 'aria-expanded': 'false', 'aria-controls': 'preferences' },
      [m.preferences],
    ),
    heading: h('h2', { id: 'heading', tabindex: '-1' }, [m.heading]),
    message: h('p', { class: 'message', role: 'alert', part: 'message', hidden: '' }),
    announcer: h('div', { class: 'visually-hidden', 'aria-live': 'polite', id: 'announcements' }),
    empty: h('p', { class: 'empty', hidden: '' }, [m.empty]),
    loadMore: h('button', { type: 'button', class: 'load-more', part: 'button', hidden: '' }, [m.loadMore]),
  };
  root.replaceChildren(
    h('div', { class: 'bar', part: 'bar' }, [
      view.heading,
      view.unread,
      view.connection,
      h('div', { class: 'tools' }, [
        h('label', {}, [view.unreadOnly, ` ${m.unreadOnly}`]),
        view.readAll,
        view.preferences,
      ]),
    ]),
    view.message,
    view.announcer,
    panel.element,
    list.element,
    view.empty,
    view.loadMore,
  );
  return view;
}

/** @typedef {ReturnType<typeof buildInboxView>} InboxView */
