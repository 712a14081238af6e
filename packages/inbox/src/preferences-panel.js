// @ts-check
// The preferences panel: one switch per channel (that channel, every category), one per category
// (every channel, that category) and the no-marketing switch, saved with the query role's
// PUT /v1/users/:userId/preferences. That call replaces every preference, so preferences the panel
// does not show (one channel of one category) are sent back as they were. A switch the user
// never set writes nothing while it stays on, so the category's own defaults keep applying.

import { h, whileBusy } from './dom.js';

/**
 * @typedef {import('./inbox-client.js').InboxClient} InboxClient
 * @typedef {import('./inbox-client.js').Preference} Preference
 * @typedef {import('./messages.js').Messages} Messages
 */

/** Herald's channels, in the order the panel lists them. */
export const preferenceChannels = /** @type {const} */ ([
  'in_app',
  'push',
  'email',
  'sms',
  'chat',
  'webhook',
]);

export class PreferencesPanel {
  /** @type {Preference[]} */
  #current = [];
  /** @type {InboxClient | null} */
  #client = null;

  /**
   * @param {{ messages: Messages, onError: (error: unknown) => void, onClose: () => void }} options
   */
  constructor(options) {
    this.options = options;
    const m = options.messages;
    this.status = h('p', { class: 'hint', role: 'status' });
    this.switches = h('div');
    this.noMarketing = h('input', { type: 'checkbox', name: 'no_marketing' });
    this.saveButton = h('button', { type: 'submit', part: 'button' }, [m.save]);
    this.closeButton = h('button', { type: 'button', part: 'button' }, [m.close]);
    this.form = h('form', {}, [
      this.switches,
      h('label', {}, [this.noMarketing, ` ${m.noMarketing}`]),
      h('div', { class: 'actions' }, [this.saveButton, this.closeButton]),
    ]);
    this.element = h(
      'section',
      {
        class: 'preferences',
        part: 'preferences',
        id: 'preferences',
        'aria-labelledby': 'preferences-heading',
      },
      [h('h3', { id: 'preferences-heading', tabindex: '-1' }, [m.preferences]), this.status, this.form],
    );
    this.element.hidden = true;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#save();
    });
    this.closeButton.addEventListener('click', () => options.onClose());
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        options.onClose();
      }
    });
  }

  /** Shows the panel and loads the user's preferences into it. @param {InboxClient} client */
  async open(client) {
    this.#client = client;
    this.element.hidden = false;
    this.form.hidden = true;
    this.status.textContent = this.options.messages.loading;
    /** @type {HTMLElement} */ (this.element.querySelector('h3')).focus();
    try {
      const answer = await client.preferences();
      if (this.#client !== client) return;
      this.#fill(answer.preferences, answer.categories ?? [], answer.no_marketing);
      this.status.textContent = '';
      this.form.hidden = false;
    } catch (error) {
      this.status.textContent = '';
      this.options.onError(error);
    }
  }

  close() {
    this.#client = null;
    this.element.hidden = true;
  }

  /**
   * @param {Preference[]} preferences
   * @param {import('./inbox-client.js').ListedCategory[]} categories
   * @param {boolean} noMarketing
   */
  #fill(preferences, categories, noMarketing) {
    const m = this.options.messages;
    this.#current = preferences;
    /** @param {string} channel @param {string} category */
    const enabled = (channel, category) =>
      preferences.find((p) => p.channel === channel && p.category === category)?.enabled ?? true;
    /** @param {string} channel @param {string} category @param {string} label @param {boolean} critical */
    const toggle = (channel, category, label, critical) => {
      const input = h('input', { type: 'checkbox', 'data-channel': channel, 'data-category': category });
      input.checked = critical || enabled(channel, category);
      input.disabled = critical;
      return h('label', {}, [input, ` ${label}`]);
    };
    // Categories belong to services, preferences to category names: one switch per name.
    /** @type {Map<string, boolean>} */
    const critical = new Map();
    for (const c of categories) critical.set(c.category, (critical.get(c.category) ?? false) || c.critical);
    const channelSet = h('fieldset', {}, [
      h('legend', {}, [m.channels]),
      ...preferenceChannels.map((c) => toggle(c, '*', m.channelNames[c] ?? c, false)),
    ]);
    const categorySet = h('fieldset', {}, [
      h('legend', {}, [m.categories]),
      ...[...critical].map(([name, isCritical]) =>
        toggle('*', name, isCritical ? `${name} (${m.alwaysDelivered})` : name, isCritical),
      ),
    ]);
    categorySet.hidden = critical.size === 0;
    this.switches.replaceChildren(channelSet, categorySet);
    this.noMarketing.checked = noMarketing;
  }

  /** The full list to save: the shown switches merged into the preferences the user had. */
  #collect() {
    /** @type {Preference[]} */
    const shown = [];
    for (const input of this.switches.querySelectorAll('input')) {
      const channel = input.dataset['channel'] ?? '';
      const category = input.dataset['category'] ?? '';
      const had = this.#current.some((p) => p.channel === channel && p.category === category);
      if (had || !input.checked) shown.push({ channel, category, enabled: input.checked });
    }
    const kept = this.#current.filter(
      (p) => !shown.some((s) => s.channel === p.channel && s.category === p.category),
    );
    return [...kept, ...shown];
  }

  async #save() {
    const client = this.#client;
    if (client === null) return;
    await whileBusy(this.saveButton, async () => {
      try {
        const answer = await client.savePreferences({
          preferences: this.#collect(),
          no_marketing: this.noMarketing.checked,
        });
        if (this.#client !== client) return;
        this.#fill(answer.preferences, answer.categories ?? [], answer.no_marketing);
        this.status.textContent = this.options.messages.saved;
      } catch (error) {
        this.options.onError(error);
      }
    });
  }
}
