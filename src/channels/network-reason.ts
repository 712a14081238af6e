// Why a provider call got no answer, as one classified word shared by the adapters that call
// over undici: never the error's text, which may carry addresses, host names or a peer's bytes.
// A caller who can choose a URL learns no more than this word (docs/security.md).
import type { DeliveryOutcome } from '../domain/outcome.js';
import { OutboundBlockedError } from './outbound-connector.js';

export type NetworkReason =
  'timeout' | 'aborted' | 'blocked' | 'refused' | 'reset' | 'dns' | 'tls' | 'network error';

const byCode: Record<string, NetworkReason> = {
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  ECONNABORTED: 'reset',
  EPIPE: 'reset',
  // undici's "other side closed": the peer ended the connection before answering.
  UND_ERR_SOCKET: 'reset',
  ENOTFOUND: 'dns',
  ENODATA: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
};

/** Certificate and handshake failures: Node's ERR_TLS_/ERR_SSL_ codes and OpenSSL's verify codes. */
const tlsCode = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/;

export function networkReason(error: unknown): NetworkReason {
  // undici wraps the socket's error as `cause`; a few levels are enough for every wrapper it has.
  let current = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if (current instanceof OutboundBlockedError) return 'blocked';
    if (current.name === 'TimeoutError') return 'timeout';
    if (current.name === 'AbortError') return 'aborted';
    const code = 'code' in current && typeof current.code === 'string' ? current.code : undefined;
    if (code !== undefined) {
      const known = byCode[code];
      if (known !== undefined) return known;
      if (tlsCode.test(code)) return 'tls';
    }
    current = current.cause;
  }
  return 'network error';
}

/**
 * The outcome of a call that got no answer, its reason prefixed with `prefix` (e.g. the
 * provider's name and a space). A target the outbound policy refuses fails for good: another
 * attempt would meet the same policy. Anything else may pass on a later attempt.
 */
export function unansweredOutcome(error: unknown, signal: AbortSignal, prefix = ''): DeliveryOutcome {
  const reason = signal.aborted ? 'aborted' : networkReason(error);
  return { kind: reason === 'blocked' ? 'failed' : 'retry', reason: `${prefix}${reason}` };
}
