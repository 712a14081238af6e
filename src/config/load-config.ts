// Turns the environment into a validated Config, or a ConfigError naming every bad setting.
import { readFileSync } from 'node:fs';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { ConfigSchema, type Config } from './schema.js';
import { isLoopbackHostname, parseIpNetworkList } from '../domain/ip-address.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const settingNames = Object.keys(ConfigSchema.properties);

export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {};
  for (const name of settingNames) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  // PORT, the name platforms set, is the api role's port unless API_PORT says otherwise.
  const port = env['PORT'];
  if (port !== undefined && port !== '') {
    const apiPort = env['API_PORT'];
    if (apiPort === undefined || apiPort === '') raw['API_PORT'] = port;
    else if (apiPort !== port)
      throw new ConfigError([`PORT=${port} and API_PORT=${apiPort} differ: set one of them`]);
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw));
  const networkProblems = allowedNetworkProblems(raw['OUTBOUND_ALLOWED_NETWORKS']);
  if (Value.Check(ConfigSchema, converted) && networkProblems.length === 0) {
    if (converted.HERALD_CONFIG_FILE !== undefined) readProviderFile(converted.HERALD_CONFIG_FILE);
    // A lease shorter than a provider call would let the delivery be claimed again while the
    // first call is still running: a duplicate by configuration.
    if (converted.WEBHOOK_TIMEOUT_MS >= converted.LEASE_SECONDS * 1000) {
      throw new ConfigError([
        `WEBHOOK_TIMEOUT_MS=${String(converted.WEBHOOK_TIMEOUT_MS)}: must be shorter than LEASE_SECONDS (${String(converted.LEASE_SECONDS)} s)`,
      ]);
    }
    // Node refuses to create a server whose headers timeout exceeds its request timeout.
    if (converted.HTTP_HEADERS_TIMEOUT_MS > converted.HTTP_REQUEST_TIMEOUT_MS) {
      throw new ConfigError([
        `HTTP_HEADERS_TIMEOUT_MS=${String(converted.HTTP_HEADERS_TIMEOUT_MS)}: must not exceed HTTP_REQUEST_TIMEOUT_MS (${String(converted.HTTP_REQUEST_TIMEOUT_MS)})`,
      ]);
    }
    // ops-port takes /metrics and the API documents off the api and query ports: they need a
    // port to go to, or they would silently not be served at all.
    if (converted.OPS_ENDPOINTS === 'ops-port' && converted.OPS_PORT === 0) {
      throw new ConfigError(['OPS_ENDPOINTS=ops-port: needs OPS_PORT above 0']);
    }
    if (
      converted.USER_JWKS_URL !== undefined &&
      (converted.USER_JWT_ISSUER === undefined || converted.USER_JWT_AUDIENCE === undefined)
    ) {
      // Without both, a token the identity provider issued for another app would be accepted.
      throw new ConfigError(['USER_JWKS_URL: needs USER_JWT_ISSUER and USER_JWT_AUDIENCE']);
    }
    // A broker without services would consume nothing; services without a broker, the same.
    const brokers = [converted.INTAKE_RABBITMQ_URL, converted.INTAKE_NATS_URL, converted.INTAKE_SQS_ENDPOINT];
    if ((converted.INTAKE_SERVICES === undefined) !== brokers.every((b) => b === undefined)) {
      throw new ConfigError([
        'INTAKE_SERVICES: set it together with a broker (INTAKE_RABBITMQ_URL, INTAKE_NATS_URL or INTAKE_SQS_ENDPOINT)',
      ]);
    }
    const oidcProblems = consoleOidcProblems(converted);
    if (oidcProblems.length > 0) throw new ConfigError(oidcProblems);
    return converted;
  }
  // Check setting by setting so every bad one is named, not only the first.
  const problems: string[] = [];
  const properties = ConfigSchema.properties as Record<
    string,
    TSchema & { 'x-secret'?: boolean; anyOf?: { const: unknown }[] }
  >;
  for (const name of settingNames) {
    const schema = properties[name];
    const value = (converted as Record<string, unknown>)[name];
    if (schema === undefined || value === undefined || Value.Check(schema, value)) continue;
    const shown = schema['x-secret'] === true ? '(secret)' : JSON.stringify(raw[name]);
    const rule =
      schema.anyOf !== undefined
        ? `must be one of ${schema.anyOf.map((s) => String(s.const)).join(', ')}`
        : ([...Value.Errors(schema, value)][0]?.message ?? 'is invalid');
    problems.push(`${name}=${shown}: ${rule}`);
  }
  throw new ConfigError([...problems, ...networkProblems]);
}

const oidcSettings = [
  'CONSOLE_OIDC_ISSUER',
  'CONSOLE_OIDC_CLIENT_ID',
  'CONSOLE_OIDC_CLIENT_SECRET',
  'CONSOLE_OIDC_REDIRECT_URL',
] as const;

/**
 * Single sign-on to the console needs all four settings, and plain http only towards this
 * machine: over a network, http would let anyone on the path read or replace the identity
 * provider's answers and the authorization code.
 */
function consoleOidcProblems(config: Config): string[] {
  const given = oidcSettings.filter((name) => config[name] !== undefined);
  if (given.length === 0) return [];
  const missing = oidcSettings.filter((name) => config[name] === undefined);
  if (missing.length > 0)
    return [`${given.join(', ')}: single sign-on to the console also needs ${missing.join(', ')}`];
  const problems: string[] = [];
  for (const name of ['CONSOLE_OIDC_ISSUER', 'CONSOLE_OIDC_REDIRECT_URL'] as const) {
    const text = config[name] ?? '';
    const url = URL.canParse(text) ? new URL(text) : undefined;
    if (url === undefined) problems.push(`${name}=${JSON.stringify(text)}: is not a URL`);
    else if (url.protocol !== 'https:' && !isLoopbackHostname(url.hostname))
      problems.push(`${name}=${JSON.stringify(text)}: must be https (http only on a loopback address)`);
    else if (url.username !== '' || url.password !== '')
      problems.push(`${name}: must not hold a user name or password`);
  }
  const redirect = config.CONSOLE_OIDC_REDIRECT_URL ?? '';
  if (URL.canParse(redirect) && new URL(redirect).pathname !== '/login/oidc/callback')
    problems.push(
      `CONSOLE_OIDC_REDIRECT_URL=${JSON.stringify(redirect)}: its path must be /login/oidc/callback, where the console takes the answer`,
    );
  return problems;
}

/** Each entry of OUTBOUND_ALLOWED_NETWORKS must be a network: a typo must not widen or void the list. */
function allowedNetworkProblems(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return parseIpNetworkList(value).problems.map(
    (problem) => `OUTBOUND_ALLOWED_NETWORKS=${JSON.stringify(value)}: ${problem}`,
  );
}

/** The optional provider file must be readable JSON; adapters read their own sections. */
export function readProviderFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError([
      `HERALD_CONFIG_FILE=${JSON.stringify(path)}: cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError([`HERALD_CONFIG_FILE=${JSON.stringify(path)}: is not valid JSON`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`HERALD_CONFIG_FILE=${JSON.stringify(path)}: must hold a JSON object`]);
  }
  return parsed as Record<string, unknown>;
}
