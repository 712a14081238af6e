// Every setting Herald reads, declared once: name, type, default, description and whether it
// is a secret. docs/configuration.md is generated from this file (npm run docs:config).
import { Type, type Static } from 'typebox';
import { callbackSettings } from './callback-settings.js';
import { setting } from './setting.js';

const Port = (def: number, description: string) =>
  setting(Type.Integer({ minimum: 0, maximum: 65535, default: def }), { description });

export const ConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description:
        'PostgreSQL connection string. When absent, Herald boots an embedded PostgreSQL in HERALD_DATA_DIR.',
      secret: true,
    }),
  ),
  DATABASE_READ_URL: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description: 'Optional read replica for the query role. Defaults to DATABASE_URL.',
      secret: true,
    }),
  ),
  DATABASE_POOL_SIZE: setting(Type.Integer({ minimum: 2, maximum: 200, default: 10 }), {
    description: 'Connections in the write pool of each process.',
  }),
  HERALD_DATA_DIR: setting(Type.String({ minLength: 1, default: './data' }), {
    description:
      'Where the embedded PostgreSQL keeps its files and the development API key. A relative path is resolved from the working directory Herald starts in, not from where the package is installed.',
  }),
  EMBEDDED_PG_PORT: Port(5433, 'Port of the embedded PostgreSQL (127.0.0.1 only).'),
  HOST: setting(Type.String({ minLength: 1, default: '127.0.0.1' }), {
    description: 'Address the HTTP servers bind to.',
  }),
  API_PORT: Port(
    3000,
    'Port of the api role (ingest). 0 picks a free port. `PORT` is accepted instead (both set: they must agree).',
  ),
  QUERY_PORT: Port(3001, 'Port of the query role (reads). 0 picks a free port.'),
  CONSOLE_PORT: Port(3002, 'Port of the console role (the web console for people). 0 picks a free port.'),
  CONSOLE_SESSION_IDLE_MINUTES: setting(Type.Integer({ minimum: 1, maximum: 1440, default: 30 }), {
    description: 'A console session ends after this many minutes without a request.',
  }),
  CONSOLE_SESSION_MAX_HOURS: setting(Type.Integer({ minimum: 1, maximum: 168, default: 12 }), {
    description: 'A console session ends this many hours after sign-in, however active.',
  }),
  CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: setting(Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }), {
    description:
      'Sign-in attempts one client address may make per minute per console process (a token bucket); over it: 429 rate_limited.',
  }),
  CONSOLE_LOCKOUT_FAILURES: setting(Type.Integer({ minimum: 1, maximum: 100, default: 5 }), {
    description: 'Failed sign-ins in a row after which a console account locks.',
  }),
  CONSOLE_LOCKOUT_MINUTES: setting(Type.Integer({ minimum: 1, maximum: 10_080, default: 15 }), {
    description: 'How long a locked console account stays locked.',
  }),
  CONSOLE_OIDC_ISSUER: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s?#]+$' }), {
      description:
        'Issuer URL of an OpenID Connect identity provider for single sign-on to the console, e.g. https://login.example.com/realms/ops (its discovery document is read from <issuer>/.well-known/openid-configuration). https, except on a loopback address. Needs CONSOLE_OIDC_CLIENT_ID, CONSOLE_OIDC_CLIENT_SECRET and CONSOLE_OIDC_REDIRECT_URL. Unset: password sign-in only (docs/console.md).',
    }),
  ),
  CONSOLE_OIDC_CLIENT_ID: Type.Optional(
    setting(Type.String({ minLength: 1, maxLength: 512 }), {
      description: "The console's client id at the identity provider.",
    }),
  ),
  CONSOLE_OIDC_CLIENT_SECRET: Type.Optional(
    setting(Type.String({ minLength: 1, maxLength: 4096 }), {
      description:
        "The console's client secret at the identity provider (sent to its token endpoint with HTTP Basic authentication, client_secret_basic).",
      secret: true,
    }),
  ),
  CONSOLE_OIDC_REDIRECT_URL: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s?#]+$' }), {
      description:
        "The console's callback URL as registered at the identity provider: the console's public origin followed by /login/oidc/callback, e.g. https://console.example.com/login/oidc/callback. https, except on a loopback address.",
    }),
  ),
  CONSOLE_OIDC_NAME: setting(Type.String({ minLength: 1, maxLength: 60, default: 'single sign-on' }), {
    description: 'What the sign-in page calls the identity provider: its button reads "Sign in with <name>".',
  }),
  OPS_PORT: Port(
    0,
    'Port for /healthz, /readyz and /metrics in processes without an HTTP role (worker, scheduler), and with OPS_ENDPOINTS=ops-port in every process. 0 disables it.',
  ),
  OPS_ENDPOINTS: setting(
    Type.Union([Type.Literal('public'), Type.Literal('ops-port')], { default: 'public' }),
    {
      description:
        "Where /metrics, /docs and /openapi.json are served. public: on the api and query ports too. ops-port: only on OPS_PORT (which must then be above 0), where each HTTP role's documents are /<role>/docs and /<role>/openapi.json; the api and query ports answer 404 for them. /healthz and /readyz stay on every port (docs/security.md).",
    },
  ),
  RESPONSE_VALIDATION: setting(Type.Boolean({ default: false }), {
    description:
      'Check every JSON answer of the api and query roles against its OpenAPI description as it leaves: an undocumented status or a body off its schema becomes a 500 and an error log line. For development and tests (the test suite runs with it on); it costs CPU per answer.',
  }),
  OPS_TOKEN: Type.Optional(
    setting(Type.String({ minLength: 32, pattern: '^\\S+$' }), {
      description:
        'When set (at least 32 characters, no spaces), /metrics, /docs and /openapi.json (wherever served) need `Authorization: Bearer <OPS_TOKEN>`; otherwise 401. /healthz and /readyz stay open.',
      secret: true,
    }),
  ),
  LOG_LEVEL: setting(
    Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
    { description: 'pino log level.' },
  ),
  BODY_LIMIT_BYTES: setting(Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 262_144 }), {
    description: 'Largest accepted request body; larger requests get 413.',
  }),
  HTTP_REQUEST_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }), {
    description:
      'Time a client has to send a whole request, headers and body, from its first byte; later: 408 request_timeout and the connection is closed. Does not limit the response (realtime streams stay open).',
  }),
  HTTP_HEADERS_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }), {
    description:
      'Time a client has to send the request headers (and a new connection its first request); later: 408 and the connection is closed. At most HTTP_REQUEST_TIMEOUT_MS.',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 600_000, default: 72_000 }), {
    description:
      'An idle kept-alive connection is closed after this long. Keep it above the idle timeout of a load balancer in front (often 60 s).',
  }),
  HTTP_IDLE_TIMEOUT_MS: setting(Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }), {
    description:
      'A connection on which nothing is sent or received for this long, during a request or a response, is closed (a client that stops reading, a stalled request). Realtime streams send a heartbeat often enough to stay open.',
  }),
  RENDER_BUDGET_MS: setting(Type.Integer({ minimum: 1, maximum: 60_000, default: 50 }), {
    description:
      'Template render time one request (an inbox page, one item, a realtime batch) or one claimed batch of the worker may spend; templated items beyond it come back not renderable (inbox) or are requeued (worker) (docs/security.md).',
  }),
  RENDER_ITEM_LIMIT_MS: setting(Type.Integer({ minimum: 1, maximum: 60_000, default: 20 }), {
    description:
      'Template render time one item (all parts of one variant) may take; over it the item is not renderable and a delivery fails with template_render_limit. Ingest checks templates and params against half of it.',
  }),
  MAX_RECIPIENTS_PER_REQUEST: setting(Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }), {
    description: 'Most recipients one POST /v1/notifications may address.',
  }),
  INGEST_CONCURRENT_COMMITS: setting(Type.Integer({ minimum: 1, maximum: 64, default: 4 }), {
    description:
      'Commits the api role runs at once. Requests arriving meanwhile wait and share the next commit (group commit); a commit next to one in flight starts only for waiting requests with at least 200 recipients among them.',
  }),
  WORKER_CONCURRENCY: setting(Type.Integer({ minimum: 1, maximum: 10_000, default: 64 }), {
    description: 'Deliveries one worker process sends at the same time.',
  }),
  CLAIM_BATCH_SIZE: setting(Type.Integer({ minimum: 1, maximum: 5000, default: 200 }), {
    description:
      'Most deliveries (or recipients, in fan-out) claimed in one statement. `herald settings set claim-batch-size` overrides it for the delivery claim at runtime (docs/budgets.md).',
  }),
  TOPIC_FAN_OUT_CHUNK: setting(Type.Integer({ minimum: 100, maximum: 10_000, default: 2000 }), {
    description:
      "Subscribers of a topic send the worker fans out per transaction; the send's cursor moves with each.",
  }),
  SCHEDULE_GRACE_MS: setting(Type.Integer({ minimum: 0, maximum: 86_400_000, default: 3_600_000 }), {
    description:
      'How late a recurring schedule may still send an occurrence it missed (scheduler down): only the latest missed one, and only within this time.',
  }),
  PROVIDER_MAX_SLOT_SHARE: setting(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.75 }), {
    description:
      "Share of a worker's WORKER_CONCURRENCY slots one provider (or webhook origin) may hold, in flight plus waiting for its cap, so a slow or hanging provider always leaves the rest to the other channels.",
  }),
  TRANSACTIONAL_RESERVED_SHARE: setting(Type.Number({ minimum: 0, maximum: 0.9, default: 0.25 }), {
    description:
      'Share of WORKER_CONCURRENCY the bulk lane may never use, so transactional deliveries always find a free slot. `herald settings set transactional-reserved-share` overrides it at runtime (docs/budgets.md).',
  }),
  BULK_EVENT_LOOP_DELAY_TARGET_MS: setting(Type.Integer({ minimum: 0, maximum: 10_000, default: 5 }), {
    description:
      "While transactional deliveries flow (one dispatched within the last 2 s), a worker halves the bulk lane's slots after each quarter second in which its event loop's delay (p99) exceeded this, and grows them back by a tenth of the cap after each quarter second under it, so a bulk drain leaves the process time for transactional work (docs/benchmarks.md, Lanes). Without transactional work bulk keeps its whole cap. 0: off.",
  }),
  LEASE_SECONDS: setting(Type.Integer({ minimum: 1, maximum: 3600, default: 60 }), {
    description:
      "How long a claimed delivery stays leased. After it expires, the scheduler's lease rescuer makes the delivery claimable again. Must exceed WEBHOOK_TIMEOUT_MS.",
  }),
  POLL_INTERVAL_MS: setting(Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }), {
    description: 'Workers poll this often even without a LISTEN/NOTIFY wake-up.',
  }),
  MAX_ATTEMPTS: setting(Type.Integer({ minimum: 1, maximum: 100, default: 8 }), {
    description: 'Attempts per delivery before it is dead.',
  }),
  RETRY_BASE_MS: setting(Type.Integer({ minimum: 1, maximum: 3_600_000, default: 2000 }), {
    description: 'Backoff before the second attempt; doubles per attempt, with full jitter.',
  }),
  RETRY_MAX_MS: setting(Type.Integer({ minimum: 1, maximum: 86_400_000, default: 3_600_000 }), {
    description: 'Longest backoff between two attempts (a provider Retry-After may ask for longer).',
  }),
  SHUTDOWN_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 600_000, default: 15_000 }), {
    description: 'On SIGTERM, how long in-flight deliveries may take before they are aborted and released.',
  }),
  WEBHOOK_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }), {
    description: 'Timeout of one webhook POST.',
  }),
  ...callbackSettings,
  PROVIDER_BREAKER_MIN_CALLS: setting(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }), {
    description:
      'Calls within the breaker window before a provider (or webhook origin) can be judged failing.',
  }),
  PROVIDER_BREAKER_FAILURE_RATIO: setting(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }), {
    description:
      'Share of failing calls (5xx, 429, timeouts, connection errors) in the window that opens the circuit.',
  }),
  PROVIDER_BREAKER_WINDOW_MS: setting(Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }), {
    description: 'Rolling window over which the circuit breaker counts calls.',
  }),
  PROVIDER_BREAKER_OPEN_MS: setting(Type.Integer({ minimum: 10, maximum: 3_600_000, default: 15_000 }), {
    description:
      'How long an open circuit defers calls before each worker process lets one probe through. A circuit one worker opens is held open by every worker (docs/providers/README.md).',
  }),
  WEBHOOK_RATE_PER_SECOND: setting(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }), {
    description:
      'Most webhook calls per second per receiving origin, for the whole deployment (the worker processes calling an origin share it); 0 means no limit.',
  }),
  PROVIDER_LIMITS_REFRESH_MS: setting(Type.Integer({ minimum: 50, maximum: 5000, default: 250 }), {
    description:
      'How often a worker process writes its heartbeat for the rate-limited providers it calls, reads how many workers share each limit, and reads the circuits other workers opened (one statement per refresh).',
  }),
  PROVIDER_LIMITS_EXPIRY_MS: setting(Type.Integer({ minimum: 500, maximum: 60_000, default: 3000 }), {
    description:
      'A worker whose provider heartbeat is older than this no longer counts in the rate limits it shared: after a crash the others take its share within this time. Keep it several times PROVIDER_LIMITS_REFRESH_MS.',
  }),
  CORS_ORIGINS: Type.Optional(
    setting(
      Type.String({
        pattern: '^https?://[a-z0-9.\\[\\]:-]+(\\s*,\\s*https?://[a-z0-9.\\[\\]:-]+)*$',
        maxLength: 4096,
      }),
      {
        description:
          'Comma-separated origins (`scheme://host[:port]`, lower case, as browsers send them; no path, no wildcard), e.g. `https://app.example.com,https://admin.example.com`, whose pages may call the query role (inbox, streams, preferences) with a user token: answered with CORS headers and preflights. Unset: none (docs/inbox.md).',
      },
    ),
  ),
  OUTBOUND_ALLOWED_NETWORKS: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description:
        'Comma-separated networks (CIDR, IPv4 or IPv6; a bare address is one host), e.g. `10.20.0.0/16,fd00:1::/64`, that webhooks, Slack webhooks, the HTTP SMS gateway and Web Push may connect to although the outbound policy refuses them by default: loopback, private, link-local (with 169.254.169.254), shared, unique-local, multicast, reserved and documentation ranges (docs/security.md). Unset: none.',
    }),
  ),
  PARTITION_MONTHS_AHEAD: setting(Type.Integer({ minimum: 2, maximum: 24, default: 3 }), {
    description: 'Monthly partitions kept created ahead of the current month.',
  }),
  ARCHIVE_DATABASE_URL: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description:
        'PostgreSQL connection string of the archive store, where months past SERVICE_RETENTION_DAYS are kept for customer support (docs/retention.md). Unset: database `<service database>_archive` on the same server (with the embedded PostgreSQL: `herald_archive`); Herald creates it if missing.',
      secret: true,
    }),
  ),
  SERVICE_RETENTION_DAYS: setting(Type.Integer({ minimum: 7, maximum: 3650, default: 90 }), {
    description:
      'A month of notifications leaves the service store (copied to the archive, then its partitions dropped) once its whole month is older than this.',
  }),
  ARCHIVE_RETENTION_MONTHS: setting(Type.Integer({ minimum: 1, maximum: 120, default: 12 }), {
    description: 'Archive partitions are dropped once their month ended this many months ago.',
  }),
  RETENTION_BATCH_ROWS: setting(Type.Integer({ minimum: 1, maximum: 100_000, default: 5000 }), {
    description: 'Rows the retention job copies to the archive per transaction.',
  }),
  RETENTION_INTERVAL_MS: setting(Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 3_600_000 }), {
    description: "How often the scheduler's retention job runs (also once at start).",
  }),
  IDEMPOTENCY_KEY_RETENTION_DAYS: setting(Type.Integer({ minimum: 1, maximum: 3650, default: 30 }), {
    description:
      'Caller idempotency keys older than this are deleted: a retry with the same key after that creates a new notification.',
  }),
  MAINTENANCE_INTERVAL_MS: setting(Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5000 }), {
    description: 'How often the scheduler rescues expired leases. (Partition upkeep runs hourly.)',
  }),
  DEV_API_KEY: setting(Type.Boolean({ default: true }), {
    description:
      'With the embedded database, create a "dev" service and print its API key at start (kept in HERALD_DATA_DIR/dev-api-key).',
  }),
  HERALD_CONFIG_FILE: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description:
        'Optional JSON file whose `providers` list configures APNs, FCM, Web Push, SMTP, SES, Twilio and HTTP SMS gateways (docs/providers/README.md).',
    }),
  ),
  PUBLIC_URL: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' }), {
      description:
        'Where providers reach the api role, e.g. https://herald.example.com: status callback URLs are built from it. Unset: no callback URL is sent.',
    }),
  ),
  UNSUBSCRIBE_SECRET: Type.Optional(
    setting(Type.String({ minLength: 32 }), {
      description:
        'HMAC-SHA256 key of the one-click unsubscribe links in emails (used only when PUBLIC_URL is set). Unset: Herald generates one on first start and keeps it in the database (table signing_keys), shared by every process.',
      secret: true,
    }),
  ),
  TRACKING_URL: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' }), {
      description:
        "Where recipients' mail clients reach the query role, e.g. https://herald.example.com. Set: emails get an open pixel and click-through links (docs/tracking.md). Unset: emails are not tracked.",
    }),
  ),
  TRACKING_SECRET: Type.Optional(
    setting(Type.String({ minLength: 32 }), {
      description:
        'HMAC-SHA256 key of the open pixel and click links. Unset: Herald generates one on first start and keeps it in the database (table signing_keys), shared by every process.',
      secret: true,
    }),
  ),
  TRACKING_LINK_TTL_DAYS: setting(Type.Integer({ minimum: 1, maximum: 3650, default: 90 }), {
    description:
      'How long the open pixel and click links of an email work; an expired click link is refused (410) and an expired pixel records nothing.',
  }),
  TRACKING_PREFETCH_SECONDS: setting(Type.Integer({ minimum: 0, maximum: 3600, default: 60 }), {
    description:
      "An email open within this many seconds of the send is flagged as a prefetch (a mail privacy proxy or a receiving system fetching images on arrival), counted apart from opens. 0: only the proxy's User-Agent flags one.",
  }),
  USER_TOKEN_TTL_SECONDS: setting(Type.Integer({ minimum: 60, maximum: 86_400, default: 3600 }), {
    description:
      'Default lifetime of the user tokens POST /v1/users/:userId/token issues (a caller may ask for less or more, up to 24 h).',
  }),
  USER_TOKEN_SECRET: Type.Optional(
    setting(Type.String({ minLength: 32 }), {
      description:
        'HMAC-SHA256 (HS256) key of the user tokens Herald issues. Unset: Herald generates one on first start and keeps it in the database (table signing_keys), shared by every process.',
      secret: true,
    }),
  ),
  USER_JWKS_URL: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s]+$' }), {
      description:
        "JWKS of the app's own identity provider: its JWTs (RS256, PS256, ES256, ES384, EdDSA) are accepted as user tokens. Needs USER_JWT_ISSUER and USER_JWT_AUDIENCE.",
    }),
  ),
  USER_JWT_ISSUER: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description: "The `iss` the identity provider's JWTs must carry.",
    }),
  ),
  USER_JWT_AUDIENCE: Type.Optional(
    setting(Type.String({ minLength: 1 }), {
      description: "The `aud` the identity provider's JWTs must carry.",
    }),
  ),
  USER_JWT_USER_CLAIM: setting(Type.String({ minLength: 1, default: 'sub' }), {
    description: "The claim of the identity provider's JWTs that holds Herald's user id.",
  }),
  STREAM_POLL_MS: setting(Type.Integer({ minimum: 100, maximum: 60_000, default: 3000 }), {
    description:
      'How often the query role looks for inbox events of its open realtime streams without a NOTIFY (NOTIFY is only a hint).',
  }),
  STREAM_MAX_CONNECTIONS: setting(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20_000 }), {
    description: 'Open realtime (SSE) streams one query process accepts; over it: 503 with Retry-After.',
  }),
  STREAM_MAX_PER_USER: setting(Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }), {
    description:
      'Open realtime streams one user may hold on one query process (tabs, devices); over it: 429 stream_limit_reached.',
  }),
  STREAM_MAX_PER_KEY: setting(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }), {
    description:
      'Open realtime streams one API key may hold on one query process; over it: 429 stream_limit_reached.',
  }),
  USER_TOKEN_ISSUE_PER_MINUTE: setting(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 600 }), {
    description:
      'User tokens one API key may have issued per minute by one query process (a token bucket); over it: 429 rate_limited with Retry-After.',
  }),
  INGEST_QUOTA_PER_MINUTE: setting(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 }), {
    description:
      'Most POST /v1/notifications requests one calling service may make per minute to one api process (a token bucket that allows the whole minute as a burst); over it: 429 rate_limited with Retry-After. 0 means no quota. With N api processes a service may send up to N times this.',
  }),
  INTAKE_SERVICES: Type.Optional(
    setting(
      Type.String({ pattern: '^[a-z][a-z0-9_-]{0,62}(\\s*,\\s*[a-z][a-z0-9_-]{0,62})*$', maxLength: 4096 }),
      {
        description:
          'Broker intake: the services whose queues (subjects) the intake role consumes, comma-separated, e.g. `billing,shop`. Each service has its own queue, named after it, and the broker decides who may publish there: a message is accepted as sent by the service its queue is bound to (docs/intake.md).',
      },
    ),
  ),
  INTAKE_RABBITMQ_URL: Type.Optional(
    setting(Type.String({ pattern: '^amqps?://\\S+$' }), {
      description:
        'Broker intake from RabbitMQ: the AMQP URL (e.g. `amqp://herald:…@rabbit:5672/notifications`). Queues `herald.intake.<service>` (quorum) with dead letters in `herald.intake.<service>.dead` (docs/intake.md).',
      secret: true,
    }),
  ),
  INTAKE_NATS_URL: Type.Optional(
    setting(Type.String({ pattern: '^(nats|tls)://\\S+$' }), {
      description:
        'Broker intake from NATS JetStream: server URLs, comma-separated (e.g. `nats://n1:4222,nats://n2:4222`). A stream per service, `HERALD_INTAKE_<service>` (work queue, created if missing) on the subject `herald.intake.<service>`, one durable pull consumer `herald-intake-<service>` per service; dead letters on `herald.dead.<service>` in stream `HERALD_INTAKE_DEAD` (docs/intake.md).',
      secret: true,
    }),
  ),
  INTAKE_SQS_ENDPOINT: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s?#]+$' }), {
      description:
        "Broker intake from Amazon SQS: the endpoint (e.g. `https://sqs.eu-west-1.amazonaws.com`); credentials come from the AWS SDK's default chain. Queues `herald-intake-<service>` with dead letters in `herald-intake-<service>-dead` (docs/intake.md).",
    }),
  ),
  INTAKE_SQS_REGION: setting(Type.String({ pattern: '^[a-z0-9-]{1,32}$', default: 'us-east-1' }), {
    description: 'The AWS region of INTAKE_SQS_ENDPOINT.',
  }),
  INTAKE_PREFETCH: setting(Type.Integer({ minimum: 1, maximum: 5000, default: 500 }), {
    description:
      'Messages one intake process holds unacknowledged per broker: what the group commit can take at once. A slow database slows consumption instead of growing memory.',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
    setting(Type.String({ pattern: '^https?://[^\\s?#]+$' }), {
      description:
        'OpenTelemetry tracing: the OTLP/HTTP base URL spans are exported to (as JSON, to <endpoint>/v1/traces), e.g. http://otel-collector:4318. Unset: tracing is off and no OpenTelemetry code is loaded (docs/tracing.md).',
    }),
  ),
  OTEL_EXPORTER_OTLP_HEADERS: Type.Optional(
    setting(Type.String({ pattern: '^[^=,\\s]+=[^,]*(,[^=,\\s]+=[^,]*)*$' }), {
      description:
        "Headers sent with every span export, as key=value pairs separated by commas (values URL-encoded), e.g. a tracing backend's API key. Only with OTEL_EXPORTER_OTLP_ENDPOINT.",
      secret: true,
    }),
  ),
  OTEL_SERVICE_NAME: setting(Type.String({ minLength: 1, maxLength: 256, default: 'herald' }), {
    description: 'The service.name of exported spans (tracing on only).',
  }),
});

export type Config = Static<typeof ConfigSchema>;
