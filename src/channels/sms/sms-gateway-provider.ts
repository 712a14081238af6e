// SMS through any HTTP gateway described by settings alone: the request is a body template
// (JSON or form) with placeholders, the answer is classified by ordered error rules and then
// default HTTP semantics, the message id is found by JSON pointer, and delivery receipts are
// verified with Standard Webhooks (https://github.com/standard-webhooks/standard-webhooks).
import { Agent, request } from 'undici';
import { Webhook } from 'standardwebhooks';
import {
  traceHeaders,
  type CallbackRequest,
  type CallbackResult,
  type ChannelProvider,
  type RenderedMessage,
  type StatusUpdate,
} from '../channel-provider.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import { countSmsSegments } from '../../domain/sms-segments.js';
import { gatewayPlaceholders, type SmsGatewayErrorRule, type SmsGatewaySettings } from './sms-settings.js';
import { headerValue } from './sms-http.js';
import { unansweredOutcome } from '../network-reason.js';
import { outboundConnector } from '../outbound-connector.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { checkSmsText, smsText } from './sms-text.js';

/** RFC 6901: the value at `pointer` in `document`, or undefined when there is none. */
export function jsonPointer(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  let current = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      current = current[Number(token)] as unknown;
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return current;
}

/** A JSON value as text: scalars as themselves, anything else as its JSON. */
function scalarText(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : JSON.stringify(value);
}

const placeholder = /\{\{\s*([a-z]+(?:\.[A-Za-z0-9_]+)?)\s*\}\}/g;

/** Values a template's placeholders are replaced with (secret.<key> included). */
type TemplateValues = Record<string, string>;

function fill(template: string, values: TemplateValues): string {
  return template.replace(placeholder, (_, name: string) => values[name] ?? '');
}

/** Every placeholder in a template's strings, with where it is. */
function placeholdersIn(template: unknown, where: string, found: [string, string][]): void {
  if (typeof template === 'string') {
    for (const match of template.matchAll(placeholder)) found.push([match[1] ?? '', where]);
  } else if (Array.isArray(template)) {
    template.forEach((item: unknown, i) => {
      placeholdersIn(item, `${where}[${String(i)}]`, found);
    });
  } else if (typeof template === 'object' && template !== null) {
    for (const [key, value] of Object.entries(template)) placeholdersIn(value, `${where}.${key}`, found);
  }
}

/**
 * Builds the body value from the template: only string values are filled, so whatever the text
 * holds (quotes, newlines, emoji) the JSON stays valid; exactly "{{segments}}" becomes a number.
 */
function renderTemplate(template: unknown, values: TemplateValues, segments: number): unknown {
  if (typeof template === 'string') {
    return /^\{\{\s*segments\s*\}\}$/.test(template) ? segments : fill(template, values);
  }
  if (Array.isArray(template)) return template.map((item: unknown) => renderTemplate(item, values, segments));
  if (typeof template === 'object' && template !== null) {
    return Object.fromEntries(
      Object.entries(template).map(([key, value]) => [key, renderTemplate(value, values, segments)]),
    );
  }
  return template;
}

export interface GatewayAnswer {
  status: number;
  /** The parsed JSON answer, or undefined when it is not JSON. */
  json: unknown;
  retryAfter: string | null;
}

export interface GatewayRules {
  name: string;
  errors: readonly SmsGatewayErrorRule[];
  successStatus: readonly number[];
  idPath: string | undefined;
}

/**
 * Error rules first (first match wins), then the success statuses, then HTTP defaults. The reason
 * names the status and the matching rule as configured, never the answer's text: the gateway may
 * echo the request (credentials included) or be a server that was never meant to be called.
 */
export function classifyGatewayAnswer(
  answer: GatewayAnswer,
  rules: GatewayRules,
  nowMs: number,
): DeliveryOutcome {
  const { status } = answer;
  const outcome = (kind: SmsGatewayErrorRule['outcome'], rule = ''): DeliveryOutcome => {
    const reason = `${rules.name} ${String(status)}${rule}`;
    if (kind !== 'retry') return { kind, reason };
    const retryAfterMs = parseRetryAfter(answer.retryAfter, nowMs);
    return { kind, reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  };
  for (const [i, rule] of rules.errors.entries()) {
    if (rule.status !== undefined && rule.status !== status) continue;
    if (rule.path !== undefined) {
      const value = jsonPointer(answer.json, rule.path);
      if (value === undefined || value === null) continue;
      if (rule.equals !== undefined && scalarText(value) !== String(rule.equals)) continue;
    }
    const matched =
      rule.path === undefined
        ? ''
        : ` ${rule.path}${rule.equals === undefined ? '' : ` = ${String(rule.equals)}`}`;
    return outcome(rule.outcome, ` errors[${String(i)}]${matched}`);
  }
  if (rules.successStatus.includes(status)) {
    const id = rules.idPath === undefined ? undefined : jsonPointer(answer.json, rules.idPath);
    return {
      kind: 'sent',
      providerMessageId: typeof id === 'string' || typeof id === 'number' ? String(id) : null,
    };
  }
  if (status === 408 || status === 429 || status >= 500) return outcome('retry');
  if (status === 401 || status === 403) return outcome('config_error');
  return outcome('failed');
}

interface ReceiptRules {
  verifier: Webhook;
  idPath: string;
  statusPath: string;
  delivered: ReadonlySet<string>;
  failed: ReadonlySet<string>;
  invalid: ReadonlySet<string>;
}

export class SmsGatewayProvider implements ChannelProvider {
  readonly channel = 'sms' as const;
  readonly name: string;
  /** Present only when the settings describe receipts: without it the callback path does not exist. */
  readonly handleCallback?: (request: CallbackRequest) => CallbackResult;
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly maxSegments: number;

  constructor(
    private readonly settings: SmsGatewaySettings,
    private readonly rules: GatewayRules,
    /** `secret.<key>` → value, for the templates. */
    private readonly secretValues: TemplateValues,
    /** Headers with their values resolved except for per-message placeholders. */
    private readonly headers: Record<string, string>,
    receipts: ReceiptRules | undefined,
    options: { timeoutMs: number; outbound: OutboundPolicy; now?: () => number },
  ) {
    this.name = settings.name;
    this.now = options.now ?? Date.now;
    this.maxSegments = settings.maxSegments ?? 10;
    this.agent = new Agent({
      // The gateway's URL is the operator's, but it is called with a caller's message: it gets
      // the same policy as every caller URL, so a DNS change cannot point it inward.
      connect: outboundConnector(options.outbound, { timeout: options.timeoutMs }),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
    if (receipts !== undefined) this.handleCallback = (req) => this.receipt(req, receipts);
  }

  checkContent(content: ChannelContent): string | null {
    return checkSmsText(smsText(content), { maxSegments: this.maxSegments });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const text = smsText(message.content);
    const problem = checkSmsText(text, { maxSegments: this.maxSegments });
    if (problem !== null) return { kind: 'failed', reason: problem };
    const { encoding, segments } = countSmsSegments(text);
    const values: TemplateValues = {
      ...this.secretValues,
      to: message.target,
      from: this.settings.from ?? '',
      text,
      reference: message.deliveryId,
      encoding: this.settings.encodingValues?.[encoding] ?? encoding,
      segments: String(segments),
    };
    const rendered = renderTemplate(this.settings.body, values, segments) as Record<string, unknown>;
    const json = this.settings.format === 'json';
    const body = json
      ? JSON.stringify(rendered)
      : new URLSearchParams(
          Object.entries(rendered).map(([k, v]): [string, string] => [k, scalarText(v)]),
        ).toString();
    const headers: Record<string, string> = {
      'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded',
      accept: 'application/json',
      ...this.headers,
      ...traceHeaders(message),
    };
    let answer: GatewayAnswer;
    try {
      const response = await request(this.settings.url, {
        method: this.settings.method ?? 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal,
      });
      const retryAfter = response.headers['retry-after'];
      const answerText = await response.body.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(answerText);
      } catch {
        parsed = undefined;
      }
      answer = {
        status: response.statusCode,
        json: parsed,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : (retryAfter?.[0] ?? null),
      };
    } catch (error) {
      return unansweredOutcome(error, signal, `${this.name} `);
    }
    return classifyGatewayAnswer(answer, this.rules, this.now());
  }

  private receipt(req: CallbackRequest, rules: ReceiptRules): CallbackResult {
    const signed = {
      'webhook-id': headerValue(req.headers, 'webhook-id') ?? '',
      'webhook-timestamp': headerValue(req.headers, 'webhook-timestamp') ?? '',
      'webhook-signature': headerValue(req.headers, 'webhook-signature') ?? '',
    };
    try {
      // Checks the timestamp (±5 min, against replays) and every v1 signature in constant time.
      rules.verifier.verify(req.rawBody, signed, { jsonParse: false });
    } catch (error) {
      const why = error instanceof Error ? error.message : 'invalid';
      return { ok: false, status: 401, reason: `Standard Webhooks signature refused: ${why}` };
    }
    let body: unknown;
    try {
      body = JSON.parse(req.rawBody.toString('utf8'));
    } catch {
      return { ok: false, status: 400, reason: 'receipt is not JSON' };
    }
    const updates: StatusUpdate[] = [];
    let ignored = 0;
    for (const receipt of Array.isArray(body) ? (body as unknown[]) : [body]) {
      const id = jsonPointer(receipt, rules.idPath);
      const status = jsonPointer(receipt, rules.statusPath);
      if ((typeof id !== 'string' && typeof id !== 'number') || id === '')
        return { ok: false, status: 400, reason: `receipt has no message id at ${rules.idPath}` };
      if (typeof status !== 'string' && typeof status !== 'number')
        return { ok: false, status: 400, reason: `receipt has no status at ${rules.statusPath}` };
      const providerMessageId = String(id);
      const value = String(status);
      const detail = `${this.name} ${value}`;
      if (rules.delivered.has(value)) updates.push({ providerMessageId, state: 'delivered', detail: null });
      else if (rules.invalid.has(value))
        updates.push({ providerMessageId, state: 'failed', detail, targetInvalid: true });
      else if (rules.failed.has(value)) updates.push({ providerMessageId, state: 'failed', detail });
      else ignored += 1;
    }
    return { ok: true, updates, ignored };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** Builds the provider from its settings entry; throws ProviderConfigError naming every problem. */
export function createSmsGatewayProvider(
  settings: SmsGatewaySettings,
  context: ProviderContext,
  options: { now?: () => number } = {},
): SmsGatewayProvider {
  const problems: string[] = [];
  const problem = (text: string) => problems.push(`provider ${settings.name}: ${text}`);
  const secretKeys = new Set(Object.keys(settings.secrets ?? {}));
  const known = new Set<string>(gatewayPlaceholders);

  const used: [string, string][] = [];
  placeholdersIn(settings.body, 'body', used);
  for (const [name, where] of used) {
    if (name.startsWith('secret.')) {
      if (!secretKeys.has(name.slice(7))) problem(`${where}: {{${name}}} names no entry of secrets`);
    } else if (!known.has(name)) {
      problem(
        `${where}: unknown placeholder {{${name}}} (known: ${gatewayPlaceholders.join(', ')}, secret.<key>)`,
      );
    } else if (name === 'from' && settings.from === undefined) {
      problem(`${where}: {{from}} is used but no from is set`);
    }
  }
  for (const [name, value] of Object.entries(settings.headers ?? {})) {
    if (typeof value !== 'string') continue;
    const found: [string, string][] = [];
    placeholdersIn(value, `headers.${name}`, found);
    for (const [placeholderName, where] of found) {
      if (!placeholderName.startsWith('secret.') || !secretKeys.has(placeholderName.slice(7)))
        problem(`${where}: headers may only use {{secret.<key>}} of a configured secret`);
    }
  }
  if (settings.format === 'form') {
    for (const [key, value] of Object.entries(settings.body)) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
        problem(`body.${key}: a form body holds only strings, numbers and booleans`);
    }
  }
  (settings.errors ?? []).forEach((rule, i) => {
    if (rule.status === undefined && rule.path === undefined)
      problem(
        `errors[${String(i)}]: give a status, a path or both (a rule matching everything would match successes)`,
      );
    if (rule.equals !== undefined && rule.path === undefined)
      problem(`errors[${String(i)}]: equals needs a path`);
  });
  const verdict = context.outbound.checkUrl(settings.url);
  if (!verdict.allowed)
    problem(
      `url: its host is a ${verdict.kind} address, which the outbound policy refuses (allow its network in OUTBOUND_ALLOWED_NETWORKS)`,
    );
  if (problems.length > 0) throw new ProviderConfigError(problems);

  // Files often end in a newline, which is no part of a credential.
  const secretValues: TemplateValues = {};
  for (const [key, ref] of Object.entries(settings.secrets ?? {}))
    secretValues[`secret.${key}`] = context.secret(ref, `secrets.${key}`).trim();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(settings.headers ?? {})) {
    headers[name.toLowerCase()] =
      typeof value === 'string' ? fill(value, secretValues) : context.secret(value, `headers.${name}`).trim();
  }

  let receipts: ReceiptRules | undefined;
  if (settings.receipts !== undefined) {
    const r = settings.receipts;
    let verifier: Webhook;
    try {
      verifier = new Webhook(context.secret(r.secret, 'receipts.secret').trim());
    } catch (cause) {
      if (cause instanceof ProviderConfigError) throw cause;
      throw new ProviderConfigError([
        `provider ${settings.name}: receipts.secret: not a Standard Webhooks secret ("whsec_" + base64)`,
      ]);
    }
    receipts = {
      verifier,
      idPath: r.idPath,
      statusPath: r.statusPath,
      delivered: new Set(r.delivered),
      failed: new Set(r.failed),
      invalid: new Set(r.invalid),
    };
  }
  return new SmsGatewayProvider(
    settings,
    {
      name: settings.name,
      errors: settings.errors ?? [],
      successStatus: settings.success?.status ?? [200, 201, 202],
      idPath: settings.success?.idPath,
    },
    secretValues,
    headers,
    receipts,
    {
      timeoutMs: settings.timeoutMs ?? context.defaultTimeoutMs,
      outbound: context.outbound,
      ...(options.now === undefined ? {} : { now: options.now }),
    },
  );
}
