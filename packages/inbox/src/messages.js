// @ts-check
// The element's own words (labels, states, announcements) in English and German; `locale` picks
// by language, anything else falls back to English. Notification text itself comes from Herald,
// already rendered in the user's locale.

/**
 * @typedef {{
 *   heading: string, unread: string, unreadOnly: string, readAll: string, preferences: string,
 *   loadMore: string, empty: string, markRead: string, markUnread: string, archive: string,
 *   remove: string, open: string, unreadState: string, newItem: (title: string) => string,
 *   connection: Record<'connecting' | 'live' | 'offline', string>, unreachable: string,
 *   channels: string, categories: string, alwaysDelivered: string, noMarketing: string,
 *   save: string, close: string, saved: string, loading: string,
 *   channelNames: Record<string, string>
 * }} Messages
 */

/** @type {Messages} */
const en = {
  heading: 'Notifications',
  unread: 'unread',
  unreadOnly: 'Unread only',
  readAll: 'Mark all read',
  preferences: 'Preferences',
  loadMore: 'Load more',
  empty: 'No notifications.',
  markRead: 'Mark read',
  markUnread: 'Mark unread',
  archive: 'Archive',
  remove: 'Delete',
  open: 'Open',
  unreadState: '(unread)',
  newItem: (title) => `New notification: ${title}`,
  connection: { connecting: 'Connecting…', live: 'Live', offline: 'Offline' },
  unreachable: 'Herald cannot be reached.',
  channels: 'Channels',
  categories: 'Categories',
  alwaysDelivered: 'always delivered',
  noMarketing: 'No marketing',
  save: 'Save',
  close: 'Close',
  saved: 'Preferences saved.',
  loading: 'Loading…',
  channelNames: {
    in_app: 'In-app',
    push: 'Push',
    email: 'Email',
    sms: 'SMS',
    chat: 'Chat',
    webhook: 'Webhook',
  },
};

/** @type {Messages} */
const de = {
  heading: 'Benachrichtigungen',
  unread: 'ungelesen',
  unreadOnly: 'Nur ungelesene',
  readAll: 'Alle als gelesen markieren',
  preferences: 'Einstellungen',
  loadMore: 'Mehr laden',
  empty: 'Keine Benachrichtigungen.',
  markRead: 'Als gelesen markieren',
  markUnread: 'Als ungelesen markieren',
  archive: 'Archivieren',
  remove: 'Löschen',
  open: 'Öffnen',
  unreadState: '(ungelesen)',
  newItem: (title) => `Neue Benachrichtigung: ${title}`,
  connection: { connecting: 'Verbinde…', live: 'Live', offline: 'Offline' },
  unreachable: 'Herald ist nicht erreichbar.',
  channels: 'Kanäle',
  categories: 'Kategorien',
  alwaysDelivered: 'wird immer zugestellt',
  noMarketing: 'Keine Werbung',
  save: 'Speichern',
  close: 'Schließen',
  saved: 'Einstellungen gespeichert.',
  loading: 'Lädt…',
  channelNames: {
    in_app: 'In der App',
    push: 'Push',
    email: 'E-Mail',
    sms: 'SMS',
    chat: 'Chat',
    webhook: 'Webhook',
  },
};

/** @param {string | null} locale a BCP 47 tag such as `de-CH`; null: English */
export function messagesFor(locale) {
  const language = (locale ?? '').toLowerCase().split('-')[0];
  return language === 'de' ? de : en;
}
