// Templates in the console: a service's templates (withdrawn ones marked), one template's
// version (parameters, fallback locale, each channel × locale variant) with its history and
// the diff against the version before, the edit form that saves a new version (operators and
// admins; checked as the API's PUT checks, and audited with the version before and after), and
// the preview: a form that re-renders the page, and a JSON route the page's script posts to as
// the sample params are typed. The sheet export, import and undo: template-import-pages.ts.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import { listServices } from '../db/stores/api-key-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import {
  findTemplateVersion,
  listTemplatesWithWithdrawn,
  lockTemplateStates,
  saveTemplate,
  type ListedTemplate,
} from '../db/stores/template-store.js';
import { serviceNamePattern } from '../domain/ids.js';
import { channels, lanes } from '../domain/notification.js';
import { ProblemError } from '../domain/problems.js';
import {
  reservedTemplateKeys,
  templateKeyPattern,
  type StoredTemplateVersion,
  type TemplateDefinition,
} from '../domain/template.js';
import { definitionProblems } from '../templates/definition-check.js';
import { draftVersion, sampleValues } from '../templates/template-renderer.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';
import { definitionFromForm, formOf, placeText, type FormProblem } from './template-form.js';
import {
  previewOf,
  versionDiff,
  versionHistory,
  versionPair,
  type ContentProblems,
  type PreviewInput,
  type PreviewResult,
} from './template-page-data.js';

export interface TemplatePageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
  contentProblems: ContentProblems;
  /** Wall-clock time one variant may take in a trial render or preview (as the api role's). */
  templateRenderMs: number;
}

export interface ConsoleService {
  id: number;
  name: string;
}

const html = 'text/html; charset=utf-8';
const keyRegExp = new RegExp(templateKeyPattern);
// Checked in the handlers, not the schema: a path with odd characters names no template (404).
const PathParams = Type.Object({ service: Type.String(), key: Type.String() });
const PageQuery = Type.Object(
  {
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
    channel: Type.Optional(Type.String({ maxLength: 20 })),
    locale: Type.Optional(Type.String({ maxLength: 35 })),
    params: Type.Optional(Type.String({ maxLength: 10_000 })),
    saved: Type.Optional(Type.Integer({ minimum: 0 })),
    unchanged: Type.Optional(Type.Literal('1')),
  },
  { additionalProperties: false },
);

/** The service a URL names; 404 for a malformed or unknown name. */
export async function serviceNamed(pool: Pool, name: string): Promise<ConsoleService> {
  const found = serviceNamePattern.test(name)
    ? (await listServices(pool)).find((s) => s.name === name)
    : undefined;
  if (found === undefined) throw new ProblemError('not_found', 'No service with this name.');
  return { id: found.id, name: found.name };
}

/** The template a URL names; 404 for a malformed, reserved or unknown key. */
async function templateNamed(pool: Pool, service: ConsoleService, key: string): Promise<ListedTemplate> {
  const found =
    keyRegExp.test(key) && !reservedTemplateKeys.has(key)
      ? (await listTemplatesWithWithdrawn(pool, service.id, key))[0]
      : undefined;
  if (found === undefined) throw new ProblemError('not_found', 'No template with this key.');
  return found;
}

export const templateHref = (service: string, key: string) =>
  `/templates/${encodeURIComponent(service)}/${encodeURIComponent(key)}`;

function presentVersion(v: StoredTemplateVersion) {
  return {
    version: v.version,
    params: Object.entries(v.params).map(([name, type]) => ({ name, type })),
    fallback_locale: v.fallbackLocale,
    variants: channels.flatMap((channel) =>
      Object.entries(v.variants[channel] ?? {}).map(([locale, parts]) => ({
        channel,
        locale,
        parts: Object.entries(parts).map(([name, text]) => ({ name, text })),
      })),
    ),
  };
}

interface PageExtra {
  status?: number;
  notice?: string;
  /** The form as posted, with its problems, when a save was refused. */
  posted?: { definition: TemplateDefinition; problems: FormProblem[] };
  preview?: Partial<PreviewInput>;
  version?: number;
  /** The version the edit form is based on; the current one unless a refused form says otherwise. */
  base?: number;
}

async function templatePage(
  deps: TemplatePageDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  where: { service: ConsoleService; template: ListedTemplate },
  extra: PageExtra,
) {
  const { service, template } = where;
  const versions = await versionHistory(deps.pool, service, template.key);
  const number = extra.version ?? template.currentVersion;
  const { shown, previous } = await versionPair(deps.pool, service.id, template.key, number, versions);
  if (shown === undefined) throw new ProblemError('not_found', 'No such version of this template.');
  const isCurrent = template.withdrawnAt === null && shown.version === template.currentVersion;
  const input: PreviewInput = {
    channel: extra.preview?.channel ?? Object.keys(shown.variants)[0] ?? '',
    locale: extra.preview?.locale ?? shown.fallbackLocale,
    params:
      extra.preview?.params ??
      JSON.stringify(Object.fromEntries(Object.entries(shown.params).map(([n, t]) => [n, sampleValues[t]]))),
  };
  const preview = extra.preview?.channel === undefined ? '' : await previewOf(shown, input, deps);
  const session = sessionOf(request);
  const page = await deps.render('template', {
    ...layoutData(session, `Template ${template.key}`),
    notice: extra.notice ?? '',
    service: service.name,
    href: templateHref(service.name, template.key),
    template: {
      key: template.key,
      category: template.category,
      lane: template.lane,
      current_version: template.currentVersion,
      updated: consoleTime(template.updatedAt),
      withdrawn: template.withdrawnAt === null ? '' : consoleTime(template.withdrawnAt),
    },
    shown: presentVersion(shown),
    is_current: isCurrent,
    versions: versions.map((v) => ({ ...v, is_shown: v.version === shown.version })),
    previous: previous?.version ?? 0,
    diff: versionDiff(shown, previous),
    editable: isCurrent,
    base_version: extra.base ?? template.currentVersion,
    form: formOf(extra.posted?.definition ?? shown),
    problems: extra.posted?.problems ?? [],
    channels,
    lanes,
    preview_input: input,
    preview_channels: Object.keys(shown.variants),
    preview_locales: [...new Set(Object.values(shown.variants).flatMap((v) => Object.keys(v)))].sort(),
    preview,
  });
  return reply
    .code(extra.status ?? 200)
    .type(html)
    .send(page);
}

/** A preview's request: a saved version (the current one unless `version`), or the edit form's draft. */
const PreviewBody = Type.Object(
  {
    channel: Type.String({ maxLength: 20 }),
    locale: Type.String({ maxLength: 35 }),
    params: Type.String({ maxLength: 10_000 }),
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
    // The edit form's fields as typed: preview the text before it is saved.
    draft: Type.Optional(
      Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 100_000 }), {
        maxProperties: 2000,
      }),
    ),
  },
  { additionalProperties: false },
);

export function templatePages(deps: TemplatePageDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requireConsole(deps, 'read');

    app.get(
      '/templates',
      {
        schema: {
          hide: true,
          querystring: Type.Object(
            { service: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: false },
          ),
        },
        preHandler: reader,
      },
      async (request, reply) => {
        const services = await listServices(deps.pool);
        const chosen = services.find((s) => s.name === request.query.service);
        const templates = chosen === undefined ? [] : await listTemplatesWithWithdrawn(deps.pool, chosen.id);
        const page = await deps.render('templates', {
          ...layoutData(sessionOf(request), 'Templates'),
          services: services.map((s) => s.name),
          service: chosen?.name ?? '',
          templates: templates.map((t) => ({
            key: t.key,
            href: templateHref(chosen?.name ?? '', t.key),
            category: t.category,
            lane: t.lane,
            version: t.currentVersion,
            updated: consoleTime(t.updatedAt),
            withdrawn: t.withdrawnAt === null ? '' : consoleTime(t.withdrawnAt),
          })),
        });
        return reply.type(html).send(page);
      },
    );

    app.get(
      '/templates/:service/:key',
      { schema: { hide: true, params: PathParams, querystring: PageQuery }, preHandler: reader },
      async (request, reply) => {
        const service = await serviceNamed(deps.pool, request.params.service);
        const template = await templateNamed(deps.pool, service, request.params.key);
        const { version, channel, locale, params, saved, unchanged } = request.query;
        const notice =
          saved !== undefined
            ? `Saved: version ${String(saved)} is current.`
            : unchanged === '1'
              ? 'Nothing changed: the form says what the current version says.'
              : undefined;
        return templatePage(
          deps,
          request,
          reply,
          { service, template },
          {
            ...(version === undefined ? {} : { version }),
            ...(notice === undefined ? {} : { notice }),
            ...(channel === undefined ? {} : { preview: { channel, locale, params } }),
          },
        );
      },
    );

    app.post(
      '/templates/:service/:key',
      {
        // Part texts may be long (html up to 100,000 characters); the form has one field per part.
        bodyLimit: 2 * 1024 * 1024,
        schema: {
          hide: true,
          params: PathParams,
          body: Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 100_000 }), {
            maxProperties: 2000,
          }),
        },
        preHandler: requireConsole(deps, 'templates:write'),
      },
      async (request, reply) => saveForm(deps, request, reply, request.params, request.body),
    );

    app.post(
      '/templates/:service/:key/preview',
      {
        schema: {
          hide: true,
          params: PathParams,
          body: PreviewBody,
        },
        // As the edit form's own limit: a draft carries every part's text.
        bodyLimit: 2 * 1024 * 1024,
        preHandler: reader,
      },
      async (request) => {
        const service = await serviceNamed(deps.pool, request.params.service);
        const template = await templateNamed(deps.pool, service, request.params.key);
        const { version: number, draft, ...input } = request.body;
        if (draft !== undefined)
          return previewDraft(deps, { serviceId: service.id, key: template.key }, draft, input);
        const wanted = number ?? template.currentVersion;
        const { shown } = await versionPair(deps.pool, service.id, template.key, wanted, []);
        if (shown === undefined) throw new ProblemError('not_found', 'No such version of this template.');
        return previewOf(shown, input, deps);
      },
    );
  };
}

/**
 * The edit form's unsaved text rendered as a new version would be, with the checks a save makes
 * (the form's reading, the definition's structure and a trial render) reported as its errors.
 */
async function previewDraft(
  deps: TemplatePageDeps,
  where: { serviceId: number; key: string },
  fields: Record<string, string>,
  input: PreviewInput,
): Promise<PreviewResult> {
  const { definition, problems } = definitionFromForm(fields);
  const found =
    problems.length > 0
      ? problems
      : (await definitionProblems(definition, deps.templateRenderMs)).map((p) => ({
          field: placeText(p.place),
          message: p.message,
        }));
  if (found.length > 0)
    return {
      locale: '',
      parts: [],
      limits: [],
      notes: [],
      errors: found.map((p) => `${p.field}: ${p.message}`),
    };
  return previewOf({ ...definition, ...where, version: draftVersion }, input, deps);
}

/** The edit form posted: a new version when it reads and checks cleanly, else the page with its problems. */
async function saveForm(
  deps: TemplatePageDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  path: { service: string; key: string },
  fields: Record<string, string>,
) {
  const service = await serviceNamed(deps.pool, path.service);
  const template = await templateNamed(deps.pool, service, path.key);
  const { definition, problems } = definitionFromForm(fields);
  if (problems.length === 0)
    problems.push(
      ...(await definitionProblems(definition, deps.templateRenderMs)).map((p) => ({
        field: placeText(p.place),
        message: p.message,
      })),
    );
  if (problems.length > 0)
    return templatePage(
      deps,
      request,
      reply,
      { service, template },
      { status: 400, posted: { definition, problems }, base: Number(fields['base_version']) },
    );
  const base = Number(fields['base_version']);
  const saved = await saveWithAudit(deps.pool, request, { service, key: template.key, base }, definition);
  if (saved === undefined)
    return templatePage(
      deps,
      request,
      reply,
      {
        service,
        template: (await listTemplatesWithWithdrawn(deps.pool, service.id, template.key))[0] ?? template,
      },
      {
        status: 409,
        posted: {
          definition,
          problems: [
            {
              field: 'version',
              message: `the template changed since you opened it (you edited version ${String(base)}): nothing was saved. Your text is below; compare it with the current version and save again.`,
            },
          ],
        },
      },
    );
  const query = saved.changed ? `saved=${String(saved.version)}` : 'unchanged=1';
  return reply.redirect(`${templateHref(service.name, template.key)}?${query}`, 303);
}

/**
 * Saves as PUT would, with an audit entry in the same transaction (so it shares the version's
 * time); undefined, saving nothing, when the current version is no longer the `base` the form
 * was opened on (another save or an import came in between, and would be overwritten).
 */
async function saveWithAudit(
  pool: Pool,
  request: FastifyRequest,
  where: { service: ConsoleService; key: string; base: number },
  definition: TemplateDefinition,
) {
  const { service, key } = where;
  return withTransaction(pool, async (client) => {
    const state = (await lockTemplateStates(client, service.id, [key])).get(key);
    if (state?.version !== where.base) return undefined;
    const before = await findTemplateVersion(client, service.id, key);
    const saved = await saveTemplate(client, service.id, key, definition);
    if (saved.changed)
      await appendAudit(client, {
        ...actorOf(request),
        action: 'template.save',
        target: `template:${service.name}/${key}`,
        before:
          before === undefined
            ? null
            : { version: before.version, category: before.category, lane: before.lane },
        after: {
          version: saved.version,
          category: definition.category,
          lane: definition.lane,
          version_created: saved.versionCreated,
        },
      });
    return saved;
  });
}
