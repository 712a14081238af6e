// Property-based fuzzing of every public route of the api and query roles. The route list, path
// parameters, query parameters, headers and body schemas come from each server's own
// /openapi.json, so a new route is fuzzed without editing this file. Every response must be
// below 500; every 4xx must be a registered problem+json; and a 4xx must leave every table as it
// was (no partial writes). Herald runs without worker and scheduler, so only requests write.
//
// The hostile inputs include those that once made Herald answer 500 or a 4xx that was not
// problem+json: NUL characters, unpaired UTF-16 surrogates, JSON nested thousands of levels
// deep, leap-second dates, `urn:uuid:` ids, near-miss dead-letter cursors, malformed
// percent-encoding and very long path segments.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import {
  publicRoutes,
  type JsonSchema,
  type PublicRoute,
  type RouteParameter,
} from '../helpers/public-routes.js';
import { changedTables, tableSnapshot, type TableSnapshot } from '../helpers/table-snapshot.js';
import { assertProblem, readResponse, type RawResponse } from '../helpers/problem-response.js';

/** Runs per route; the total is a few thousand requests. */
const runsFor = (route: PublicRoute): number =>
  route.method === 'POST' && route.path === '/v1/notifications' ? 300 : route.isOpen ? 25 : 100;
const crossRouteRuns = 150;

const maxSegmentLength = 20_000;
const maxDepth = 20_000;

let db: TestDatabase;
let h: TestHerald;
let routes: PublicRoute[];
let requestsSent = 0;
/** "202", "400 validation_failed", …: shows the fuzzing gets past validation into the handlers. */
const outcomes = new Map<string, number>();
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

/** Existing resources, so generated requests also reach past "not found" into the handlers. */
const fixtures: Record<string, string[]> = {
  userId: ['fuzz-1', 'fuzz-2'],
  id: [],
  deviceId: [],
  importId: [],
};

// Fixed uuids keep the generated inputs the same from run to run (each run has a fresh database).
const someUuid = '0190a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091';
const fixedNotificationId = `shop#${someUuid}`;
/** Valid bodies per route, starting points for mutations (the schema supplies the rest). */
const examples: Record<string, unknown[]> = {
  'POST /v1/notifications': [
    {
      recipients: ['fuzz-1', 'fuzz-2'],
      channels: ['in_app'],
      lane: 'bulk',
      category: 'orders.shipped',
      content: {
        default: { title: 'Shipped', body: 'Your order is on its way', url: 'https://example.com/o/1' },
        in_app: { status: 'shipped' },
      },
      data: { order: 1, tags: ['a', 'b'], nested: { ok: true } },
    },
    {
      id: fixedNotificationId,
      recipients: ['fuzz-1'],
      channels: ['in_app', 'webhook'],
      content: { default: { title: 'Later' } },
      send_at: '2099-01-01T00:00:00Z',
    },
  ],
  'PATCH /v1/notifications/{id}': [{ version: 5, content: { default: { title: 'v5' } }, data: { step: 5 } }],
  'PUT /v1/users/{userId}': [
    {
      email: 'kim@example.com',
      phone: '+821012345678',
      locale: 'ko-KR',
      time_zone: 'Asia/Seoul',
      webhook_url: 'https://example.com/hook',
    },
  ],
  'POST /v1/users/bulk': [{ users: [{ id: 'fuzz-3', email: 'a@example.com' }, { id: 'fuzz-4' }] }],
  'POST /v1/users/{userId}/devices': [{ platform: 'ios', app_id: 'com.shop', token: 'tok-1' }],
  'PUT /v1/users/{userId}/devices': [
    { devices: [{ platform: 'android', app_id: 'com.shop', token: 'tok-2' }] },
  ],
  'PUT /v1/service/webhook': [{ url: 'http://127.0.0.1:9/hook' }],
  'POST /v1/dead-letters/replay': [{ all: true }, { ids: [someUuid] }],
};

// ---- strings ------------------------------------------------------------------------------

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Copies a JSON value so that keys such as `__proto__` stay own properties and reach the JSON text. */
function scrub(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrub);
  if (typeof value === 'object' && value !== null) {
    const out = {};
    for (const [k, v] of Object.entries(value)) define(out, k, scrub(v));
    return out;
  }
  return value;
}

/** Sets an own enumerable property even for `__proto__`, so it reaches the JSON text. */
function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const dictionary = [
  '',
  ' ',
  '\t',
  '\r\n',
  '\u0001',
  '\u001b[31m',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\u200b',
  '\u202e',
  '\ufffd',
  'e\u0301',
  '👩‍👩‍👧',
  '𝕳𝖊𝖗𝖆𝖑𝖉',
  'Ⅻ',
  'İı',
  "'",
  '"',
  '\\',
  '`',
  '${process.env}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  "' OR '1'='1",
  '; DROP TABLE users; --',
  '$1',
  '%s%n%x',
  '../../etc/passwd',
  '..\\..\\windows',
  'null',
  'undefined',
  'NaN',
  'true',
  '0',
  '-1',
  '1e309',
  '0x10',
  '9007199254740993',
  '__proto__',
  'constructor',
  'prototype',
  '#',
  'shop#',
  'shop#00000000-0000-0000-0000-000000000000',
  `SHOP#${someUuid}`,
  `billing#${someUuid}`,
  `shop#${someUuid.toUpperCase()}`,
  `shop#${someUuid}#x`,
  `shop#${someUuid.replace('8', '9')}`,
  someUuid,
  '{6ba7b810-9dad-11d1-80b4-00c04fd430c8}',
  'http://127.0.0.1:9/',
  'https://example.com/' + 'p'.repeat(2100),
  'javascript:alert(1)',
  'file:///etc/passwd',
  'http://[::1]:80/',
  'http://169.254.169.254/latest/meta-data/',
  'mailto:a@example.com',
  'a@b.c',
  '+999999999999999',
  'Etc/GMT+14',
  'x-klingon',
  '2030-13-45T25:61:61Z',
  '2030-01-01t00:00:00z',
  '0000-01-01T00:00:00Z',
];

/** Inputs that once broke Herald (see the header). */
const knownBugDictionary = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfff',
  'urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8',
  '2016-12-31T23:59:60Z',
];

const controlChar = fc.integer({ min: 1, max: 0x9f }).map((c) => String.fromCharCode(c));

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...dictionary) },
  { weight: 4, arbitrary: fc.constantFrom(...knownBugDictionary) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: controlChar, maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...dictionary), fc.string({ unit: 'binary', maxLength: 10 }))
      .map(([a, b]) => a + b),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 129, max: 5000 }), fc.constantFrom('x', '€', '😀', '\u0301'))
      .map(([n, c]) => c.repeat(n)),
  },
);

// ---- JSON values --------------------------------------------------------------------------

const randomJson: fc.Arbitrary<unknown> = fc
  .jsonValue({ maxDepth: 4, stringUnit: 'binary' })
  .map((v) => scrub(v));

const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    -0,
    1e308,
    2 ** 53,
    '',
    '0',
    'true',
    [],
    {},
    [null],
    {
      a: null,
    },
  ),
  randomJson,
  hostileString,
);

/**
 * Very deep values are spliced into the JSON text after serialising (JSON.stringify itself
 * overflows near depth 5000), through a marker string.
 */
const deepMarker = /"\\u0002deep:(\d+):([oa])\\u0002"/g;
const deepValue: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 2, max: maxDepth }), fc.constantFrom('o', 'a'))
  .map(([depth, kind]) => `\u0002deep:${String(depth)}:${kind}\u0002`);

function toJsonText(value: unknown): string {
  return JSON.stringify(value).replace(deepMarker, (_, depth: string, kind: string) => {
    const n = Number(depth);
    return kind === 'o' ? '{"a":'.repeat(n) + '1' + '}'.repeat(n) : '['.repeat(n) + '1' + ']'.repeat(n);
  });
}

const protoKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'then',
  'length',
  '0',
  '',
);
const pollution = fc.constantFrom<unknown>(
  { polluted: true },
  { prototype: { polluted: true } },
  { toString: 'polluted' },
  'polluted',
);

// ---- values from a schema ------------------------------------------------------------------

function valueFor(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  const own = valueForType(schema, depth);
  return schema.nullable === true ? fc.oneof(own, fc.constant(null)) : own;
}

function valueForType(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  if (schema.anyOf !== undefined) return fc.oneof(...schema.anyOf.map((s) => valueFor(s, depth)));
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  switch (schema.type ?? '') {
    case 'string':
      return stringFor(schema);
    case 'integer':
      return fc.integer({
        min: Math.max(schema.minimum ?? -1000, -(2 ** 31)),
        max: Math.min(schema.maximum ?? 1000, 2 ** 31),
      });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = valueFor(schema.items ?? {}, depth + 1);
      const constraints = { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 4, 4) };
      return schema.uniqueItems === true
        ? fc.uniqueArray(items, { ...constraints, selector: (v) => JSON.stringify(v) })
        : fc.array(items, constraints);
    }
    case 'object': {
      const properties = schema.properties ?? {};
      const record = fc.record(
        Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, valueFor(s, depth + 1)])),
        { requiredKeys: (schema.required ?? []).filter((k) => k in properties) },
      );
      const extra = schema.additionalProperties;
      if (typeof extra !== 'object' || depth > 3) return record;
      return fc
        .tuple(record, fc.dictionary(fc.string({ maxLength: 10 }), randomJson, { maxKeys: 4 }))
        .map(([r, d]) => ({ ...d, ...r }));
    }
    default:
      return randomJson;
  }
}

function stringFor(schema: JsonSchema): fc.Arbitrary<string> {
  const maxLength = Math.min(schema.maxLength ?? 40, 40);
  const minLength = Math.min(schema.minLength ?? 0, maxLength);
  switch (schema.format ?? '') {
    case 'uuid':
      return fc.uuid();
    case 'date-time':
      return fc
        .date({
          min: new Date('1990-01-01T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        })
        .map((d) => d.toISOString());
    case 'uri':
      return fc.webUrl();
    default:
      break;
  }
  if (schema.pattern !== undefined) {
    return fc
      .stringMatching(new RegExp(schema.pattern))

      .filter((s) => s.length >= minLength && s.length <= (schema.maxLength ?? Infinity));
  }
  return fc.string({ minLength, maxLength });
}

// ---- mutations of a valid body -------------------------------------------------------------

type Mutation =
  | { kind: 'drop' }
  | { kind: 'replace'; value: unknown }
  | { kind: 'add'; key: string; value: unknown }
  | { kind: 'grow'; count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Mutation>({ kind: 'drop' }) },
  { weight: 4, arbitrary: wrongType.map((value): Mutation => ({ kind: 'replace', value })) },
  { weight: 2, arbitrary: hostileString.map((value): Mutation => ({ kind: 'replace', value })) },
  { weight: 1, arbitrary: deepValue.map((value): Mutation => ({ kind: 'replace', value })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(300_000, 4097, 257)
      .map((n): Mutation => ({ kind: 'replace', value: 'y'.repeat(n) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.oneof(protoKey, hostileString), fc.oneof(pollution, randomJson))
      .map(([key, value]): Mutation => ({ kind: 'add', key, value })),
  },
  { weight: 1, arbitrary: fc.constantFrom(2, 101, 1001).map((count): Mutation => ({ kind: 'grow', count })) },
);

interface Slot {
  parent: Record<string, unknown> | unknown[] | undefined;
  key: string | number;
  node: unknown;
}

function slots(root: unknown): Slot[] {
  const out: Slot[] = [{ parent: undefined, key: '', node: root }];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        out.push({ parent: node, key: i, node: child });
        walk(child);
      });
    } else if (typeof node === 'object' && node !== null) {
      for (const [k, child] of Object.entries(node)) {
        out.push({ parent: node as Record<string, unknown>, key: k, node: child });
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

/** Applies mutations to a copy; `undefined` means "no body at all". */
function mutate(valid: unknown, steps: [number, Mutation][]): unknown {
  let root: unknown = JSON.parse(JSON.stringify(valid));
  for (const [pick, step] of steps) {
    // Values from constantFrom are shared between runs: mutate copies only.
    const m = 'value' in step ? { ...step, value: JSON.parse(JSON.stringify(step.value)) as unknown } : step;
    const all = slots(root);
    const slot = all[pick % all.length];
    if (slot === undefined) continue;
    const set = (value: unknown) => {
      if (slot.parent === undefined) root = value;
      else if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = value;
      else define(slot.parent, String(slot.key), value);
    };
    switch (m.kind) {
      case 'drop':
        if (slot.parent === undefined) root = undefined;
        else if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
        else Reflect.deleteProperty(slot.parent, slot.key);
        break;
      case 'replace':
        set(m.value);
        break;
      case 'add':
        if (Array.isArray(slot.node)) slot.node.push(m.value);
        else if (typeof slot.node === 'object' && slot.node !== null) define(slot.node, m.key, m.value);
        else {
          const wrapped = {};
          define(wrapped, m.key, m.value);
          set(wrapped);
        }
        break;
      case 'grow':
        if (Array.isArray(slot.node)) {
          const first: unknown = slot.node[0] ?? 'x';
          for (let i = 0; i < m.count; i++)
            slot.node.push(typeof first === 'string' ? `${first}-${String(i)}` : first);
        } else set(Array.from({ length: m.count }, (_, i) => `grown-${String(i)}`));
        break;
    }
    if (root === undefined) break;
  }
  return root;
}

// ---- requests ------------------------------------------------------------------------------

interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const rawSegments = [
  '..%2f',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e',
  '%5c..%5c',
  '%23',
  '%3F',
  '%2F',
  ';x=1',
  '*',
  '.',
  '~',
  '%20',
  '%09',
  '%u0041'.replace('%', '%25'),
  '%00',
  'a%00b',
  'x'.repeat(20_000),
  '%',
  '%zz',
  '%ff',
  '%c0%ae%c0%ae',
  '%e2%80',
];

/** Query values and keys that trip parsers: arrays, prototype keys, odd numbers. */
const queryKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    '__proto__[polluted]',
    'constructor[prototype][polluted]',
    'limit[]',
    'a.b',
    '',
  ),
  hostileString,
);
const queryValue = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1.5',
    '1e3',
    '0x10',
    '99999999999999999999',
    'NaN',
    'true',
    'null',
    '[]',
    '{}',
  ),
  hostileString,
);

function encodeSegment(text: string): string {
  return encodeURIComponent(text.replace(loneSurrogate, '\ufffd'));
}

function decodedLength(segment: string): number {
  try {
    return decodeURIComponent(segment).length;
  } catch {
    return segment.length;
  }
}

function pathParameter(p: RouteParameter): fc.Arbitrary<string> {
  const known = fixtures[p.name] ?? [];
  const options: fc.WeightedArbitrary<string>[] = [
    { weight: 2, arbitrary: valueFor(p.schema).map((v) => encodeSegment(String(v))) },
    { weight: 3, arbitrary: hostileString.map(encodeSegment) },
    { weight: 1, arbitrary: fc.constantFrom(...rawSegments) },
  ];
  if (known.length > 0) options.push({ weight: 4, arbitrary: fc.constantFrom(...known.map(encodeSegment)) });
  return fc.oneof(...options).filter((s) => decodedLength(s) <= maxSegmentLength);
}

/** Dead-letter cursors are base64url("<ISO time>|<uuid>"); near-misses reach the SQL. */
const cursor = fc
  .tuple(
    fc.date({ noInvalidDate: false }),
    fc.oneof(fc.uuid(), fc.stringMatching(/^[0-9a-f-]{36}$/), hostileString),
    fc.constantFrom('|', '||', ''),
  )
  .map(([date, id, sep]) =>
    Buffer.from(`${Number.isNaN(date.getTime()) ? 'x' : date.toISOString()}${sep}${id}`).toString(
      'base64url',
    ),
  );

function queryString(route: PublicRoute): fc.Arbitrary<string> {
  const declared = route.parameters.filter((p) => p.in === 'query');
  const entries = declared.map((p) =>
    fc.option(
      fc.oneof(
        { weight: 3, arbitrary: valueFor(p.schema).map((v) => [p.name, String(v)] as [string, string]) },
        { weight: 2, arbitrary: queryValue.map((v) => [p.name, v] as [string, string]) },
        ...(p.name === 'cursor'
          ? [{ weight: 3, arbitrary: cursor.map((v) => [p.name, v] as [string, string]) }]
          : []),
      ),
      { nil: undefined },
    ),
  );
  const extras = fc.array(fc.tuple(queryKey, queryValue), { maxLength: 3 });
  return fc
    .tuple(fc.tuple(...entries), extras, fc.constantFrom('', '&', '&&', '&=', '&%zz', '&a'))
    .map(([chosen, extra, tail]) => {
      const pairs = [...chosen.filter((e) => e !== undefined), ...extra];
      const text = pairs
        .map(([k, v]) => `${encodeSegment(k)}=${encodeSegment(v)}`)
        .join('&')
        .slice(0, 4000);
      return text === '' && tail === '' ? '' : `?${text}${tail}`;
    });
}

/** Header values fetch accepts: Latin-1 without NUL, CR or LF. */
function headerSafe(text: string): string {
  return text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
}

function headerParameters(route: PublicRoute): fc.Arbitrary<Record<string, string>> {
  const declared = route.parameters.filter((p) => p.in === 'header');
  const one = (p: RouteParameter) =>
    fc.option(
      fc.oneof(
        valueFor(p.schema).map((v) => headerSafe(String(v))),
        fc.constantFrom('fuzz-key-1', 'fuzz-key-2'),
        fc.uuid(),
        hostileString.map(headerSafe),
      ),
      { nil: undefined },
    );
  return fc
    .tuple(...declared.map(one))
    .map((values) =>
      Object.fromEntries(
        declared.flatMap((p, i) =>
          values[i] === undefined ? [] : [[p.name, values[i]] as [string, string]],
        ),
      ),
    );
}

const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/json;;;',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/octet-stream',
      'application/problem+json',
      'application/vnd.api+json',
      '*/*',
      '',
    ),
  },
  { weight: 1, arbitrary: hostileString.map(headerSafe) },
);

const rawText = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '{',
    '[',
    '{"recipients":',
    'null',
    'undefined',
    "{'a':1}",
    '{"a":1,}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '\ufeff{}',
    '{"a":1}{"b":2}',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"a":{"__proto__":{"polluted":true}}}',
    '{"\\u005f_proto__":{"polluted":true}}',
    'a=1&b=2',
    '<xml/>',
    '1e999',
    '"string"',
    '{"data":{"a":"\\u0000"}}',
    '{"recipients":["\\ud800"]}',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

const authorization = (apiKey: string) =>
  fc.oneof(
    { weight: 19, arbitrary: fc.constant<string | undefined>(`Bearer ${apiKey}`) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constant<string | undefined>(undefined),
        fc.constantFrom(
          `bearer ${apiKey}`,
          `Bearer  ${apiKey}`,
          `Bearer ${apiKey}x`,
          'Bearer ',
          'Basic eDp5',
        ),
        hostileString.map((s) => headerSafe(`Bearer ${s}`)),
      ),
    },
  );

function bodyFor(route: PublicRoute): fc.Arbitrary<{ body?: string; type?: string }> {
  if (route.method === 'GET') return fc.constant({});
  const schema = route.body;
  const bases = examples[`${route.method} ${route.path}`] ?? [];
  const valid = schema === undefined ? randomJson : valueFor(schema);
  const start = bases.length > 0 ? fc.oneof(fc.constantFrom(...bases), valid) : valid;
  const mutated = fc
    .tuple(start, fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 }))
    .map(([v, steps]) => mutate(v, steps));
  const json = (value: fc.Arbitrary<unknown>) =>
    fc.tuple(value, contentType).map(([v, type]) => (v === undefined ? {} : { body: toJsonText(v), type }));
  const options: fc.WeightedArbitrary<{ body?: string; type?: string }>[] = [
    { weight: 2, arbitrary: json(valid) },
    { weight: 5, arbitrary: json(mutated) },
    { weight: 2, arbitrary: json(randomJson) },
    { weight: 1, arbitrary: fc.tuple(rawText, contentType).map(([body, type]) => ({ body, type })) },
    { weight: 1, arbitrary: json(deepValue) },
  ];
  if (bases.length > 0) options.push({ weight: 2, arbitrary: json(fc.constantFrom(...bases)) });
  if (schema === undefined) options.push({ weight: 6, arbitrary: fc.constant({}) });
  return fc.oneof(...options);
}

function requestFor(route: PublicRoute, apiKey: string): fc.Arbitrary<FuzzRequest> {
  const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '');
  const pathParams = names.map((name) => {
    const declared = route.parameters.find((p) => p.in === 'path' && p.name === name);
    return pathParameter(declared ?? { in: 'path', name, schema: { type: 'string' } });
  });
  return fc
    .tuple(
      fc.tuple(...pathParams),
      queryString(route),
      headerParameters(route),
      authorization(apiKey),
      bodyFor(route),
    )
    .map(([segments, query, headers, auth, { body, type }]) => {
      let i = 0;
      const path = route.path.replace(/\{\w+\}/g, () => segments[i++] ?? '');
      const all: Record<string, string> = { ...headers };
      if (auth !== undefined) all['authorization'] = auth;
      if (type !== undefined) all['content-type'] = type;
      return {
        method: route.method,
        url: `${route.base}${path}${query}`,
        headers: all,
        ...(body === undefined ? {} : { body }),
      };
    });
}

/** Other methods on known paths, and paths no route declares. */
function strayRequest(apiKey: string): fc.Arbitrary<FuzzRequest> {
  const known = routes.map((r) => ({ base: r.base, path: r.path }));
  return fc
    .tuple(
      fc.constantFrom(...known),
      fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
      fc.array(
        fc
          .oneof(hostileString.map(encodeSegment), fc.constantFrom(...rawSegments))
          .filter((s) => decodedLength(s) <= maxSegmentLength),
        { maxLength: 3 },
      ),
      fc.boolean(),
    )
    .map(([{ base, path }, method, extra, withBody]) => {
      const filled = path.replace(/\{\w+\}/g, 'fuzz-1');
      const suffix = extra.join('/');
      const hasBody = withBody && method !== 'GET';
      return {
        method,
        url: `${base}${filled}${suffix === '' ? '' : `/${suffix}`}`,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
        },
        ...(hasBody ? { body: '{"a":1}' } : {}),
      };
    });
}

// ---- the invariants ------------------------------------------------------------------------

let lastSnapshot: TableSnapshot | undefined;

async function sendAndCheck(request: FuzzRequest): Promise<void> {
  const before = lastSnapshot ?? (await tableSnapshot(db.pool));
  lastSnapshot = undefined;
  const controller = new AbortController();
  const raw = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    signal: controller.signal,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  // An accepted realtime stream never ends: its status and headers are the answer.
  const streaming = raw.ok && (raw.headers.get('content-type') ?? '').startsWith('text/event-stream');
  if (streaming) controller.abort();
  const response: RawResponse = streaming
    ? { status: raw.status, contentType: raw.headers.get('content-type') ?? '', text: '' }
    : await readResponse(raw);
  requestsSent += 1;
  const after = await tableSnapshot(db.pool);
  const context = `${request.method} ${request.url.slice(0, 300)}`;
  assert.ok(response.status < 500, `${context} → ${String(response.status)} ${response.text.slice(0, 300)}`);
  let outcome = String(response.status);
  if (response.status >= 400) {
    outcome += ` ${assertProblem(response, context).code}`;
    assert.deepEqual(changedTables(before, after), [], `${context} → ${String(response.status)} wrote rows`);
  }
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  lastSnapshot = after;
}

/** Stable per-route seeds: adding a route does not change the inputs of the others. */
function seedOf(text: string): number {
  let hash = 2166136261;
  for (const c of text) hash = Math.imul(hash ^ c.charCodeAt(0), 16777619);
  return hash | 0;
}

async function ensureFixtures(): Promise<void> {
  for (const user of ['fuzz-1', 'fuzz-2']) {
    const res = await h.call('PUT', `/v1/users/${user}`, { email: `${user}@example.com` });
    assert.equal(res.status, 200);
  }
  const device = await h.call('POST', '/v1/users/fuzz-1/devices', {
    platform: 'ios',
    app_id: 'com.shop',
    token: 'fixture-token',
  });
  assert.equal(device.status, 201);
  const sent = await h.call('POST', '/v1/notifications', {
    recipients: ['fuzz-1'],
    channels: ['in_app'],
    content: { default: { title: 'Fixture' } },
    send_at: '2099-01-01T00:00:00Z',
  });
  assert.equal(sent.status, 202);
  fixtures['deviceId'] = [String(device.body.id)];
  fixtures['id'] = [String(sent.body.id), fixedNotificationId];
  lastSnapshot = undefined;
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'query'], env: { TRACKING_URL: 'http://127.0.0.1:9' } });
  const webhook = await h.call('PUT', '/v1/service/webhook', { url: 'http://127.0.0.1:9/hook' });
  assert.equal(webhook.status, 200);
  routes = await publicRoutes([h.herald.apiUrl ?? '', h.herald.queryUrl ?? '']);
  // A recorded template import, so undo requests reach past "not found" (the first undo
  // succeeds; later ones are refused as already undone).
  const imported = await fetch(`${h.herald.apiUrl ?? ''}/v1/templates/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'text/csv' },
    body: 'key,category,lane,params,fallback_locale,channel,locale,text\nfuzz,news,bulk,,en,sms,en,Hi\n',
  });
  assert.equal(imported.status, 200);
  fixtures['importId'] = [String(((await imported.json()) as { import_id: number }).import_id)];
});
after(async () => {
  await h.stop();
  await db.drop();
});

describe('fuzzing every public route from its OpenAPI schema', () => {
  test('the route list comes from both roles and includes the routes known today', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`);
    for (const known of [
      'POST /v1/notifications',
      'PATCH /v1/notifications/{id}',
      'POST /v1/users/bulk',
      'POST /v1/dead-letters/replay',
      'GET /v1/users/{userId}/inbox',
    ])
      assert.ok(names.includes(known), `${known} is in ${names.join(', ')}`);
    const postNotifications = routes.find((r) => r.method === 'POST' && r.path === '/v1/notifications');
    assert.ok(postNotifications?.body?.properties?.['recipients'] !== undefined, 'body schemas are read');
  });

  test('each route: status < 500, every 4xx a registered problem+json, and no write on 4xx', async (t) => {
    const started = Date.now();
    const apiKey = h.apiKey;
    for (const route of routes) {
      const name = `${route.method} ${route.path} (${route.server})`;
      await t.test(name, async () => {
        await ensureFixtures();
        await fc.assert(
          fc.asyncProperty(requestFor(route, apiKey), (request) => sendAndCheck(request)),
          { seed: seedOf(name), numRuns: runsFor(route), includeErrorInReport: true },
        );
      });
    }
    await t.test('other methods and undeclared paths', async () => {
      await fc.assert(
        fc.asyncProperty(strayRequest(apiKey), (request) => sendAndCheck(request)),
        { seed: seedOf('stray'), numRuns: crossRouteRuns, includeErrorInReport: true },
      );
    });
    t.diagnostic(`${String(requestsSent)} requests in ${String(Date.now() - started)} ms`);
    t.diagnostic([...outcomes].map(([o, n]) => `${o}: ${String(n)}`).join(', '));
    assert.ok((outcomes.get('200') ?? 0) + (outcomes.get('202') ?? 0) > 100, 'enough requests succeed');
    assert.ok(requestsSent >= 2000, `sent ${String(requestsSent)} requests`);
  });

  test('no request polluted Object.prototype of the process that served it', () => {
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});
