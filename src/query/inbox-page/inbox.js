// @ts-check
// Herald's inbox page: logs in with a user id and a user token and hands them to <herald-inbox>
// (packages/inbox, served beside this file and imported from there), which shows the inbox and
// follows it live. Plain browser JS, no build. The token lives in this tab's sessionStorage; `#user=…&token=…` in the
// address logs in once and is taken out of the address bar at once.

import { HeraldInbox } from './herald-inbox.js';

/** @typedef {{ user: string, token: string }} Session */

const storageKeys = { user: 'herald.inbox.user', token: 'herald.inbox.token' };

/** @param {string} id */
function byId(id) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found;
}

const view = {
  signedIn: byId('signed-in'),
  signedInUser: byId('signed-in-user'),
  logOut: byId('log-out'),
  message: byId('message'),
  login: /** @type {HTMLFormElement} */ (byId('login')),
  loginUser: /** @type {HTMLInputElement} */ (byId('login-user')),
  loginToken: /** @type {HTMLInputElement} */ (byId('login-token')),
};
const inbox = (() => {
  const found = byId('inbox');
  if (!(found instanceof HeraldInbox)) throw new Error('#inbox is not a <herald-inbox>');
  return found;
})();

/** @param {string | null} text */
function showMessage(text) {
  view.message.textContent = text ?? '';
  view.message.hidden = text === null;
}

/** @param {Session} session */
function signIn(session) {
  sessionStorage.setItem(storageKeys.user, session.user);
  sessionStorage.setItem(storageKeys.token, session.token);
  view.login.hidden = true;
  view.loginToken.value = '';
  view.signedInUser.textContent = `Signed in as ${session.user}`;
  view.signedIn.hidden = false;
  showMessage(null);
  // Token last: the element starts once it has a user and a token.
  inbox.token = null;
  inbox.userId = session.user;
  inbox.token = session.token;
  inbox.hidden = false;
}

/** @param {string | null} message @param {{ keepUser?: boolean }} [options] */
function signOut(message, options = {}) {
  inbox.token = null;
  inbox.hidden = true;
  const user = sessionStorage.getItem(storageKeys.user) ?? inbox.userId;
  sessionStorage.removeItem(storageKeys.token);
  if (!options.keepUser) sessionStorage.removeItem(storageKeys.user);
  view.signedIn.hidden = true;
  view.login.hidden = false;
  view.loginUser.value = options.keepUser ? user : '';
  view.loginToken.value = '';
  showMessage(message);
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
inbox.addEventListener('herald-inbox-unauthenticated', (event) => {
  const { message } = /** @type {CustomEvent<{ message: string }>} */ (event).detail;
  signOut(`Please log in again: ${message}`, { keepUser: true });
});

const fromFragment = takeFragmentSession();
const storedUser = sessionStorage.getItem(storageKeys.user);
const storedToken = sessionStorage.getItem(storageKeys.token);
if (fromFragment !== null) signIn(fromFragment);
else if (storedUser !== null && storedToken !== null) signIn({ user: storedUser, token: storedToken });
else signOut(null, { keepUser: true });
