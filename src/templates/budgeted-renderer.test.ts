// Render limits: what a variant does when it runs past its cap or fails (template-renderer.ts),
// and how the budgeted renderer spends a request's budget, settles and remembers failures, and
// logs them once without params. The budget's clock is a test clock; liquidjs's own limit runs
// on the real one, against a template far slower than any cap used here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { BudgetedRenderer, type RenderTarget } from './budgeted-renderer.js';
import {
  renderVariant,
  TemplateRenderError,
  textProblems,
  type RenderableVersion,
} from './template-renderer.js';

// 90,000 loop iterations: hundreds of ms, against caps of tens of ms (a tiny render fits one
// easily, even on a loaded machine).
const nested = '{% for i in (1..n) %}{% for j in (1..n) %}{{ i }}{% endfor %}{% endfor %}';
const version: RenderableVersion = {
  serviceId: 1,
  key: 'digest',
  version: 1,
  fallbackLocale: 'en',
  variants: { in_app: { en: { title: 'For {{ name }}', body: nested } } },
};
const target = (n: number, name = 'ann'): RenderTarget => ({
  version,
  channel: 'in_app',
  locale: 'en',
  params: { n, name },
});

function setup(options: { budgetMs?: number; itemMs?: number } = {}) {
  const logged: string[] = [];
  const logger = createLogger(
    'warn',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(chunk.toString());
        done();
      },
    }),
  );
  const metrics = createMetrics();
  const clock = { now: 0 };
  const renderer = new BudgetedRenderer({
    budgetMs: options.budgetMs ?? 1000,
    itemMs: options.itemMs ?? 50,
    metrics,
    logger,
    rememberMs: 60_000,
    now: () => clock.now,
  });
  const failures = async (reason: string) =>
    (await metrics.templateRenderFailures.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { renderer, logged, clock, failures };
}

describe('renderVariant limits', () => {
  test('a render past its limit fails with reason limit; a failing template with reason error', () => {
    assert.throws(
      () => renderVariant(version, 'in_app', 'en', { n: 300, name: 'x' }, 5),
      (e: unknown) =>
        e instanceof TemplateRenderError && e.reason === 'limit' && /longer than 5 ms/.test(e.message),
    );
    assert.throws(
      () => renderVariant(version, 'in_app', 'en', { n: 2 }, 1000),
      (e: unknown) => e instanceof TemplateRenderError && e.reason === 'error',
    );
    const fine = renderVariant(version, 'in_app', 'en', { n: 2, name: 'Ann' }, 1000);
    assert.deepEqual(fine.content, { title: 'For Ann', body: '1122' });
  });

  test('one filter call over a huge range is refused by the memory limit, not run', () => {
    const sorting: RenderableVersion = {
      ...version,
      key: 'sorting',
      variants: { in_app: { en: { title: '{{ (1..5000000) | sort | size }}' } } },
    };
    assert.throws(
      () => renderVariant(sorting, 'in_app', 'en', {}, 1000),
      (e: unknown) => e instanceof TemplateRenderError && e.reason === 'error' && /memory/.test(e.message),
    );
  });

  test('the ingest trial render names a variant that renders too slowly', async () => {
    const problems = await textProblems(
      {
        params: {},
        fallbackLocale: 'en',
        variants: { in_app: { en: { title: 'Hi', body: nested.replaceAll('n)', '300)') } } },
      },
      5,
    );
    assert.deepEqual(
      problems.map((p) => p.place),
      [{ field: 'variants', channel: 'in_app', locale: 'en', part: 'body' }],
    );
    assert.match(problems[0]?.message ?? '', /rendering takes longer than 5 ms/);
  });
});

describe('BudgetedRenderer', () => {
  test('a slow render is settled on its second miss, logged once without params, then not tried', async () => {
    const { renderer, logged, failures } = setup();
    const hostile = target(300, 'secret-name');
    const first = await renderer.render(renderer.budget(), hostile);
    assert.deepEqual(first.ok ? undefined : [first.reason, first.settled], ['limit', false]);
    assert.equal(logged.length, 0, 'a first miss may be bad luck: not logged');
    const second = await renderer.render(renderer.budget(), hostile);
    assert.deepEqual(second.ok ? undefined : [second.reason, second.settled], ['limit', true]);
    const third = await renderer.render(renderer.budget(), hostile);
    assert.deepEqual(third.ok ? undefined : [third.reason, third.settled], ['limit', true]);
    assert.equal(logged.length, 1);
    assert.match(logged[0] ?? '', /"template":"digest".*"reason":"limit"/);
    assert.ok(!(logged[0] ?? '').includes('secret-name'), 'params never reach the log');
    assert.equal(await failures('limit'), 3);
    // The same template with other params is another render.
    const other = await renderer.render(renderer.budget(), target(2));
    assert.deepEqual(other.ok ? other.variant.content : undefined, { title: 'For ann', body: '1122' });
  });

  test('a failing render is settled at once; remembered renders are tried again after rememberMs', async () => {
    const { renderer, logged, clock } = setup();
    const broken: RenderTarget = { ...target(2), params: { n: 2 } };
    const first = await renderer.render(renderer.budget(), broken);
    assert.deepEqual(first.ok ? undefined : [first.reason, first.settled], ['error', true]);
    await renderer.render(renderer.budget(), broken);
    assert.equal(logged.length, 1);
    clock.now += 60_001;
    await renderer.render(renderer.budget(), broken);
    assert.equal(logged.length, 2, 'tried (and logged) again once forgotten');
  });

  test('once the budget is spent, items are not tried; a render cut short by it is not held against it', async () => {
    const { renderer, clock, logged } = setup({ budgetMs: 50, itemMs: 20 });
    const budget = renderer.budget();
    clock.now = 40;
    // 10 ms left, less than the 20 ms cap: the miss says nothing about the template.
    const cut = await renderer.render(budget, target(300));
    assert.deepEqual(cut.ok ? undefined : [cut.reason, cut.settled], ['budget', false]);
    clock.now = 50;
    const skipped = await renderer.render(budget, target(2));
    assert.deepEqual(skipped.ok ? undefined : [skipped.reason, skipped.settled], ['budget', false]);
    // A new request has a new budget: the same item renders.
    assert.equal((await renderer.render(renderer.budget(), target(2))).ok, true);
    // And the hostile one, given its full cap twice, settles as limit (nothing was held against it).
    await renderer.render(renderer.budget(), target(300));
    const settled = await renderer.render(renderer.budget(), target(300));
    assert.deepEqual(settled.ok ? undefined : [settled.reason, settled.settled], ['limit', true]);
    assert.equal(logged.length, 1);
  });
});
