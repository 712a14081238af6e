// The registry of client-facing problem codes. Every 4xx/5xx Herald answers carries one of
// these codes in an application/problem+json body; docs/errors.md documents each (a test
// keeps the two in sync).

export const problems = {
  validation_failed: { status: 400, title: 'The request does not match the schema' },
  invalid_json: { status: 400, title: 'The request body is not valid JSON' },
  malformed_url: { status: 400, title: 'The request URL is not correctly percent-encoded' },
  malformed_request: { status: 400, title: 'The HTTP request is malformed' },
  invalid_notification_id: { status: 400, title: 'The notification id is not of the form service#uuid' },
  foreign_notification_id: { status: 400, title: 'The notification id names another service' },
  invalid_email: { status: 400, title: 'The email address is not valid' },
  invalid_phone: { status: 400, title: 'The phone number is not a valid E.164 number' },
  invalid_url: { status: 400, title: 'The URL is not an absolute http(s) URL' },
  target_blocked: { status: 400, title: 'The URL points at an address Herald does not call' },
  channel_unavailable: { status: 400, title: 'No provider is configured for a requested channel' },
  content_missing: { status: 400, title: 'A requested channel has no content to show' },
  content_over_limit: { status: 400, title: 'The content exceeds a provider limit of a requested channel' },
  callback_invalid: { status: 400, title: 'The provider status report cannot be read' },
  too_many_recipients: { status: 400, title: 'The request addresses more recipients than allowed' },
  unsubscribe_link_invalid: { status: 400, title: 'The unsubscribe link is not valid' },
  tracking_link_invalid: { status: 400, title: 'The tracked link is not valid' },
  engagement_range_invalid: { status: 400, title: 'The figures range is reversed or too long' },
  template_not_found: { status: 400, title: 'The request names a template this service does not have' },
  template_params_invalid: { status: 400, title: 'A template parameter is missing or of the wrong type' },
  template_invalid: { status: 400, title: 'The template cannot be saved as written' },
  budget_not_found: { status: 400, title: 'The request names a rate budget this service does not have' },
  budget_not_bulk: { status: 400, title: 'Only a bulk-lane notification can name a rate budget' },
  workflow_invalid: { status: 400, title: 'The workflow steps cannot run as written' },
  cron_invalid: { status: 400, title: 'The cron expression is not five valid fields' },
  cursor_invalid: { status: 400, title: 'The cursor is not one this listing gave out' },
  template_import_invalid: { status: 400, title: 'The template file has bad rows; nothing was imported' },
  template_import_suspect_text: {
    status: 400,
    title: 'The template file has text that looks mis-decoded; nothing was imported',
  },
  unauthenticated: { status: 401, title: 'A valid API key or user token is required' },
  callback_unauthenticated: { status: 401, title: 'The status report is not authenticated as its provider' },
  forbidden: {
    status: 403,
    title: 'The resource belongs to another service or needs a permission the key lacks',
  },
  csrf_failed: {
    status: 403,
    title: "The console request lacks its session's CSRF token or comes from another origin",
  },
  not_found: { status: 404, title: 'No such resource' },
  topic_not_found: { status: 404, title: 'The calling service has no topic with this key' },
  route_not_found: { status: 404, title: 'No such route' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'The request was not received in time' },
  version_conflict: { status: 409, title: 'A newer version of the notification exists' },
  topic_exists: { status: 409, title: 'The calling service already has a topic with this key' },
  not_cancelable: { status: 409, title: 'Nothing of the notification is left to cancel' },
  callback_subscription_limit: {
    status: 409,
    title: 'The service has as many callback subscriptions as it may; delete one first',
  },
  template_import_undo_conflict: {
    status: 409,
    title: 'The import cannot be undone: it was undone already, or its templates changed since',
  },
  unsubscribe_link_used: { status: 410, title: 'The unsubscribe link was already used' },
  tracking_link_expired: { status: 410, title: 'The tracked link has expired' },
  idempotency_key_reused: { status: 422, title: 'The idempotency key was used with a different request' },
  rate_limited: { status: 429, title: 'The caller is over a rate limit; retry later' },
  stream_limit_reached: {
    status: 429,
    title: 'The user or API key holds as many realtime streams as it may; close one first',
  },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  headers_too_large: { status: 431, title: 'The request headers or URL are too large' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json' },
  identity_provider_unavailable: {
    status: 503,
    title: "The identity provider's keys cannot be fetched; retry later",
  },
  too_many_streams: {
    status: 503,
    title: 'This process holds as many realtime streams as it may; retry later',
  },
  service_unavailable: { status: 503, title: 'Herald cannot reach its database; retry later' },
  internal_error: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problems;

export interface ProblemDetail {
  /** JSON pointer or name of the offending input, when there is one. */
  field?: string;
  message: string;
}

/** A client-facing error; the problem handler renders it. */
export class ProblemError extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    readonly detail?: string,
    readonly errors?: ProblemDetail[],
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(
      detail ?? problems[code].title,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'ProblemError';
    this.status = problems[code].status;
    this.headers = options?.headers ?? {};
  }
  readonly headers: Record<string, string>;
}
