// A service's categories in the console: every role sees their settings (critical, marketing,
// the per-channel defaults, the frequency caps); operators and admins set one, checked as the
// API's PUT /v1/categories/:category checks it, and each change is in the audit log with the
// settings before and after.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { withTransaction, type Pool } from '../db/pools.js';
import { listServices } from '../db/stores/api-key-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import {
  CategoryInputSchema,
  CategoryNameSchema,
  listServiceCategories,
  replaceCategory,
  type CategoryInput,
} from '../db/stores/category-store.js';
import { channels } from '../domain/notification.js';
import { categorySettingsProblem, type CategorySettings } from '../domain/preferences.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

export interface CategoryPageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
}

const defaultChoices = ['', 'on', 'off'] as const;
const Text = (maxLength: number) => Type.Optional(Type.String({ maxLength }));

/** The form: a checkbox sends "on" or nothing; a default is "", "on" or "off"; caps are JSON. */
const CategoryForm = Type.Object(
  {
    _csrf: Text(100),
    service: Type.String({ maxLength: 63 }),
    category: Type.String({ maxLength: 200 }),
    critical: Text(10),
    marketing: Text(10),
    caps: Text(20_000),
    ...Object.fromEntries(channels.map((c) => [`default_${c}`, Text(10)])),
  },
  { additionalProperties: false },
);
type CategoryFormBody = Record<string, string | undefined>;

interface PageState {
  status?: number;
  error?: string;
  /** The form's values when a change was refused, so nothing typed is lost. */
  form?: FormValues;
}

interface FormValues {
  category: string;
  critical: boolean;
  marketing: boolean;
  defaults: { channel: string; value: string }[];
  caps: string;
}

function formValues(category: string, s: CategorySettings | undefined): FormValues {
  return {
    category,
    critical: s?.critical ?? false,
    marketing: s?.marketing ?? false,
    defaults: channels.map((c) => {
      const d = s?.defaults[c];
      return { channel: c, value: d === undefined ? '' : d ? 'on' : 'off' };
    }),
    caps: s === undefined || Object.keys(s.caps).length === 0 ? '' : JSON.stringify(s.caps, null, 2),
  };
}

function defaultsText(s: CategorySettings): string {
  const set = channels.filter((c) => s.defaults[c] !== undefined);
  return set.length === 0
    ? 'all on'
    : set.map((c) => `${c} ${s.defaults[c] === true ? 'on' : 'off'}`).join(', ');
}

/** The form as the API's body, or why it cannot be one (the field and the problem). */
function inputOf(body: CategoryFormBody): { input: CategoryInput } | { error: string } {
  const defaults: Record<string, boolean> = {};
  for (const c of channels) {
    const choice = body[`default_${c}`] ?? '';
    if (!(defaultChoices as readonly string[]).includes(choice))
      return { error: `The default of ${c} must be on, off or unset.` };
    if (choice !== '') defaults[c] = choice === 'on';
  }
  let caps: unknown = {};
  const capsText = (body['caps'] ?? '').trim();
  if (capsText !== '') {
    try {
      caps = JSON.parse(capsText);
    } catch {
      return { error: 'The caps are not JSON.' };
    }
  }
  const input = {
    critical: body['critical'] === 'on',
    marketing: body['marketing'] === 'on',
    defaults,
    caps,
  };
  const [first] = Value.Errors(CategoryInputSchema, input);
  if (first !== undefined)
    return { error: `${first.instancePath === '' ? 'caps' : first.instancePath}: ${first.message}.` };
  return { input: input as CategoryInput };
}

export function categoryPages(deps: CategoryPageDeps): FastifyPluginAsync {
  async function page(
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    state: PageState & { edit?: string; saved?: string },
  ) {
    const services = await listServices(deps.pool);
    const service = services.find((s) => s.name === serviceName) ?? services[0];
    const categories = service === undefined ? [] : await listServiceCategories(deps.pool, service.id);
    const editing = categories.find((c) => c.category === state.edit);
    const html = await deps.render('categories', {
      ...layoutData(sessionOf(request), 'Categories'),
      notice: state.saved === undefined ? '' : `Category ${state.saved} saved.`,
      services: services.map((s) => s.name),
      service: service?.name ?? '',
      categories: categories.map((c) => ({
        name: c.category,
        critical: c.critical ? 'yes' : 'no',
        marketing: c.marketing ? 'yes' : 'no',
        defaults: defaultsText(c),
        caps: Object.keys(c.caps).length === 0 ? '' : JSON.stringify(c.caps),
        updated: consoleTime(c.updatedAt),
      })),
      form: state.form ?? formValues(editing?.category ?? '', editing),
      error: state.error ?? '',
    });
    return reply
      .code(state.status ?? 200)
      .type('text/html; charset=utf-8')
      .send(html);
  }

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/categories',
      {
        schema: {
          hide: true,
          querystring: Type.Object(
            { service: Text(63), edit: Text(200), saved: Text(200) },
            { additionalProperties: false },
          ),
        },
        preHandler: requireConsole(deps, 'read'),
      },
      async (request, reply) => {
        const { service, edit, saved } = request.query;
        return page(request, reply, service ?? '', {
          ...(edit === undefined ? {} : { edit }),
          ...(saved === undefined ? {} : { saved }),
        });
      },
    );

    app.post(
      '/categories',
      { schema: { hide: true, body: CategoryForm }, preHandler: requireConsole(deps, 'templates:write') },
      async (request, reply) => {
        const body = request.body as CategoryFormBody & { service: string; category: string };
        const refuse = (error: string) =>
          page(request, reply, body.service, {
            status: 400,
            error,
            form: {
              ...formValues(body.category, undefined),
              critical: body['critical'] === 'on',
              marketing: body['marketing'] === 'on',
              defaults: channels.map((c) => ({ channel: c, value: body[`default_${c}`] ?? '' })),
              caps: body['caps'] ?? '',
            },
          });
        const service = (await listServices(deps.pool)).find((s) => s.name === body.service);
        if (service === undefined) return refuse(`There is no service named "${body.service}".`);
        if (!Value.Check(CategoryNameSchema, body.category))
          return refuse('A category name is 1 to 64 letters, digits, _ . : or -.');
        const parsed = inputOf(body);
        if ('error' in parsed) return refuse(parsed.error);
        const settings = {
          critical: parsed.input.critical ?? false,
          marketing: parsed.input.marketing ?? false,
          defaults: parsed.input.defaults ?? {},
          caps: parsed.input.caps ?? {},
        };
        const problem = categorySettingsProblem(settings);
        if (problem !== undefined)
          return refuse(`Marketing ${problem}: a critical category is always delivered.`);
        await withTransaction(deps.pool, async (client) => {
          const { before } = await replaceCategory(client, service.id, body.category, settings);
          await appendAudit(client, {
            ...actorOf(request),
            action: 'category.update',
            target: `category:${service.name}/${body.category}`,
            before,
            after: settings,
          });
        });
        const back = new URLSearchParams({ service: service.name, saved: body.category });
        return reply.redirect(`/categories?${back.toString()}`, 303);
      },
    );
  };
}
