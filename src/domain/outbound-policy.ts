// The outbound policy: which addresses Herald may connect to when it calls a URL on a caller's
// behalf (webhooks, Slack incoming webhooks, the HTTP SMS gateway, Web Push endpoints). By
// default nothing that reaches into the network Herald runs in: loopback, private, link-local
// (with the cloud metadata address 169.254.169.254), shared (CGNAT), unique-local, multicast,
// unspecified, broadcast, reserved and documentation ranges, and every IPv6 form that carries
// one of those IPv4 addresses. Networks named in OUTBOUND_ALLOWED_NETWORKS are let through.
// Ranges: the IANA special-purpose address registries (RFC 6890 and its updates).
import {
  networkContains,
  parseIpAddress,
  parseIpNetwork,
  type IpAddress,
  type IpNetwork,
} from './ip-address.js';

export type BlockedKind =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'shared'
  | 'unique-local'
  | 'multicast'
  | 'unspecified'
  | 'broadcast'
  | 'reserved'
  | 'documentation';

export type AddressVerdict = { allowed: true } | { allowed: false; kind: BlockedKind };

/** First match wins, so the single addresses come before the ranges holding them. */
const blockedRanges = (
  [
    ['0.0.0.0/8', 'unspecified'], // "this network"; Linux connects 0.0.0.0 to the local host
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'shared'], // carrier-grade NAT (RFC 6598)
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link-local'], // holds 169.254.169.254, the cloud metadata service
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
    ['192.0.2.0/24', 'documentation'],
    ['192.88.99.0/24', 'reserved'], // the retired 6to4 relay anycast
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'reserved'], // benchmarking
    ['198.51.100.0/24', 'documentation'],
    ['203.0.113.0/24', 'documentation'],
    ['224.0.0.0/4', 'multicast'],
    ['255.255.255.255/32', 'broadcast'],
    ['240.0.0.0/4', 'reserved'],
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['64:ff9b:1::/48', 'reserved'], // NAT64 for local use (RFC 8215): translates into local networks
    ['100::/64', 'reserved'], // discard-only
    ['2001:db8::/32', 'documentation'],
    ['2001::/23', 'reserved'], // IETF protocol assignments, Teredo (2001::/32) among them
    ['3fff::/20', 'documentation'],
    ['fc00::/7', 'unique-local'],
    ['fe80::/10', 'link-local'],
    ['fec0::/10', 'private'], // the deprecated site-local range
    ['ff00::/8', 'multicast'],
  ] satisfies [string, BlockedKind][]
).map(([text, kind]) => [network(text), kind] as const);

/**
 * IPv6 forms whose packets go to an IPv4 address held in their bits (byte offset of it):
 * IPv4-mapped (::ffff:0:0/96, what a dual-stack socket connects to), IPv4-compatible (::/96,
 * deprecated), NAT64's well-known prefix (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16).
 * Each is judged as the IPv4 address it carries.
 */
const carriersOfIpv4: readonly [IpNetwork, number][] = [
  [network('::ffff:0:0/96'), 12],
  [network('::/96'), 12],
  [network('64:ff9b::/96'), 12],
  [network('2002::/16'), 2],
];

function network(text: string): IpNetwork {
  const parsed = parseIpNetwork(text);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

function carriedIpv4(address: IpAddress): IpAddress | undefined {
  if (address.version !== 6) return undefined;
  // :: and ::1 sit in the IPv4-compatible range but are IPv6's own unspecified and loopback.
  if (address.bytes.slice(0, 15).every((b) => b === 0) && (address.bytes[15] ?? 0) <= 1) return undefined;
  for (const [carrier, offset] of carriersOfIpv4) {
    if (networkContains(carrier, address))
      return { version: 4, bytes: address.bytes.slice(offset, offset + 4) };
  }
  return undefined;
}

export class OutboundPolicy {
  /** `allowedNetworks`: reachable even though a blocked range holds them (OUTBOUND_ALLOWED_NETWORKS). */
  constructor(private readonly allowedNetworks: readonly IpNetwork[] = []) {}

  /** The verdict on one address as a connection would use it (text from DNS or a URL host). */
  checkAddress(text: string): AddressVerdict {
    const address = parseIpAddress(text);
    // Not an address at all: nothing can be connected to, so nothing is let through.
    return address === undefined ? { allowed: false, kind: 'reserved' } : this.check(address);
  }

  /**
   * What can be said of a URL before any DNS lookup: a host that is an address literal (in any
   * spelling WHATWG URL parsing normalises: `2130706433`, `0x7f.1`, `[::ffff:7f00:1]`) or a
   * `localhost` name, which always means the loopback interface (RFC 6761 §6.3). Other names
   * pass here and are checked on every connection. Unparseable URLs pass: they are refused as
   * invalid elsewhere.
   */
  checkUrl(url: string): AddressVerdict {
    let hostname: string;
    try {
      hostname = new URL(url).hostname;
    } catch {
      return { allowed: true };
    }
    if (parseIpAddress(hostname) !== undefined) return this.checkAddress(hostname);
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (name === 'localhost' || name.endsWith('.localhost')) return this.checkAddress('127.0.0.1');
    return { allowed: true };
  }

  private check(address: IpAddress): AddressVerdict {
    if (this.allowedNetworks.some((n) => networkContains(n, address))) return { allowed: true };
    const carried = carriedIpv4(address);
    if (carried !== undefined) return this.check(carried);
    const blocked = blockedRanges.find(([range]) => networkContains(range, address));
    return blocked === undefined ? { allowed: true } : { allowed: false, kind: blocked[1] };
  }
}
