// The connector of every undici agent that calls a URL a caller gave (webhook, Slack, HTTP SMS
// gateway, Web Push). It applies the outbound policy to the address each new connection is
// actually made to: an address literal is checked before any socket exists; a name is resolved
// once, inside the socket's own lookup hook, and the socket gets only the addresses that passed.
// What was checked is what is connected to, so a name that resolves to a public address once and
// to 127.0.0.1 the next time (DNS rebinding) is caught on the connection that would use it.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { buildConnector } from 'undici';
import type { BlockedKind, OutboundPolicy } from '../domain/outbound-policy.js';

/** Resolves a host name to all its addresses (dns.lookup with all: true; replaceable in tests). */
export type OutboundLookup = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

/** No connection was made: every address the target has is refused by the outbound policy. */
export class OutboundBlockedError extends Error {
  readonly code = 'HERALD_OUTBOUND_BLOCKED';
  constructor(readonly kind: BlockedKind) {
    super(`the outbound policy refuses the target's address (${kind})`);
    this.name = 'OutboundBlockedError';
  }
}

export interface OutboundConnectorOptions {
  /** Connect timeout in ms; the DNS lookup runs inside it. */
  timeout: number;
  /** Replaces DNS (tests); undefined: dns.lookup. */
  lookup?: OutboundLookup;
  /** TLS options for https targets, e.g. an extra CA. */
  tls?: Pick<ConnectionOptions, 'ca'>;
}

export function outboundConnector(
  policy: OutboundPolicy,
  options: OutboundConnectorOptions,
): buildConnector.connector {
  const resolve = options.lookup ?? ((hostname: string) => dnsLookup(hostname, { all: true }));
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const family = familyNumber(lookupOptions.family);
        const fitting = addresses.filter((a) => family === 0 || a.family === family);
        let refused: BlockedKind | undefined;
        const allowed = fitting.filter((a) => {
          const verdict = policy.checkAddress(a.address);
          if (!verdict.allowed) refused ??= verdict.kind;
          return verdict.allowed;
        });
        const first = allowed[0];
        if (first === undefined) {
          callback(refused === undefined ? notFound(hostname) : new OutboundBlockedError(refused), '', 0);
        } else if (lookupOptions.all === true) {
          callback(
            null,
            allowed.map((a) => ({ address: a.address, family: a.family })),
          );
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => {
        callback(error instanceof Error ? error : notFound(hostname), '', 0);
      },
    );
  };
  const connect = buildConnector({ timeout: options.timeout, lookup, ...options.tls });
  return (connectOptions, callback) => {
    // net.connect skips the lookup hook for an address literal, so literals are checked here.
    if (isIP(connectOptions.hostname) !== 0) {
      const verdict = policy.checkAddress(connectOptions.hostname);
      if (!verdict.allowed) {
        callback(new OutboundBlockedError(verdict.kind), null);
        return;
      }
    }
    connect(connectOptions, callback);
  };
}

/** net asks for a family as 0 (any), 4, 6, or by name. */
function familyNumber(family: number | string | undefined): number {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

function notFound(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
}
