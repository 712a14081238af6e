// The overview's chart and live refresh: reads /overview.json (the figures the page shows), draws
// them with uPlot, and reads them again every 10 seconds. Without scripts the page's tables
// still hold every figure. Text is written with textContent only.
'use strict';

/**
 * @typedef {'accepted' | 'sent' | 'delivered' | 'failed' | 'suppressed'} SeriesName
 * @typedef {{ lane: string, recipients: number, oldestRecipientSeconds: number,
 *   due: number, oldestSeconds: number, sending: number, overdue: number }} Waiting
 * @typedef {{ key: string, breakerState: string, workers: number, calls: number,
 *   failures: number, errorRate: number | null, latencyMsMean: number | null,
 *   latencyMsMax: number | null, reportedAt: string }} Provider
 * @typedef {{ times: number[], stepSeconds: number, series: Record<SeriesName, number[]>,
 *   totals: Record<SeriesName, number>, waiting: Waiting[], deadLetters: number,
 *   breakdown: { lane: string, channel: string, state: string, count: number }[],
 *   providers: Provider[],
 *   generatedAt: string }} Overview
 */

(function () {
  const chartBox = document.getElementById('chart');
  const source = chartBox?.getAttribute('data-src');
  if (chartBox === null || source === null || source === undefined) return;
  /** @type {Record<SeriesName, string>} */
  const colours = {
    accepted: '#4b5563',
    sent: '#2563eb',
    delivered: '#16a34a',
    failed: '#dc2626',
    suppressed: '#d97706',
  };
  const names = /** @type {SeriesName[]} */ (Object.keys(colours));
  /** @type {uPlot | null} */
  let plot = null;

  /** @param {Overview} overview @returns {uPlot.AlignedData} */
  function columns(overview) {
    return [overview.times, ...names.map((n) => overview.series[n])];
  }

  /** @param {HTMLElement} box @param {Overview} overview */
  function draw(box, overview) {
    if (plot !== null) {
      plot.setData(columns(overview));
      return;
    }
    plot = new uPlot(
      {
        width: Math.max(320, box.clientWidth),
        height: 260,
        series: [{}, ...names.map((n) => ({ label: n, stroke: colours[n], width: 2 }))],
        axes: [{}, { label: 'per ' + String(overview.stepSeconds) + ' s' }],
        scales: { x: { time: true } },
      },
      columns(overview),
      box,
    );
    box.setAttribute('data-drawn', 'true');
  }

  /** @param {HTMLElement} row @param {string | number} text */
  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = String(text);
    row.appendChild(td);
  }

  /** @param {string} selector @param {string} text */
  function setText(selector, text) {
    const element = document.querySelector(selector);
    if (element !== null) element.textContent = text;
  }

  /** Replaces a table's rows. @param {string} selector @param {(string | number)[][]} rows */
  function fillTable(selector, rows) {
    const body = document.querySelector(selector + ' tbody');
    if (body === null) return;
    body.replaceChildren();
    for (const values of rows) {
      const row = document.createElement('tr');
      for (const v of values) cell(row, v);
      body.appendChild(row);
    }
  }

  /** @param {Overview} overview */
  function refreshTables(overview) {
    for (const name of names) setText('[data-total="' + name + '"]', String(overview.totals[name]));
    setText('#dead-letters', String(overview.deadLetters));
    setText('#generated', overview.generatedAt.replace('T', ' ').slice(0, 19));
    fillTable(
      '#waiting',
      overview.waiting.map((w) => [
        w.lane,
        w.recipients,
        Math.round(w.oldestRecipientSeconds),
        w.due,
        Math.round(w.oldestSeconds),
        w.sending,
        w.overdue,
      ]),
    );
    fillTable(
      '#providers',
      overview.providers.map((p) => [
        p.key,
        p.breakerState,
        p.workers,
        p.calls,
        p.failures,
        p.errorRate === null ? '' : (p.errorRate * 100).toFixed(1) + ' %',
        p.latencyMsMean === null ? '' : Math.round(p.latencyMsMean),
        p.latencyMsMax === null ? '' : Math.round(p.latencyMsMax),
        p.reportedAt,
      ]),
    );
    fillTable(
      '#breakdown',
      overview.breakdown.map((b) => [b.lane, b.channel, b.state, b.count]),
    );
  }

  /** @param {HTMLElement} box @param {string} url */
  async function refresh(box, url) {
    try {
      const answer = await fetch(url, {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
      if (answer.redirected || !answer.ok) return;
      /** @type {unknown} */
      const body = await answer.json();
      const overview = /** @type {Overview} */ (body);
      draw(box, overview);
      refreshTables(overview);
    } catch (error) {
      box.setAttribute('data-error', String(error));
    }
  }

  void refresh(chartBox, source);
  setInterval(() => void refresh(chartBox, source), 10_000);
})();
