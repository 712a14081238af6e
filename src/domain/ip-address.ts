// IP addresses and networks as bytes, read from their text forms, so that ranges can be
// compared without the network stack: IPv4 in dotted decimal, IPv6 as in RFC 4291 §2.2
// (with `::` and an embedded dotted IPv4 tail; a zone id `%eth0` is dropped).

export interface IpAddress {
  readonly version: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: readonly number[];
}

export interface IpNetwork {
  readonly address: IpAddress;
  /** Leading bits that must match: 0–32 for IPv4, 0–128 for IPv6. */
  readonly prefix: number;
}

/**
 * Only the canonical dotted decimal: four parts, no leading zeros. Shorthands such as `127.1`,
 * `0x7f.0.0.1` or `0177.0.0.1` are read by URL parsers in several ways; a URL's host reaches
 * this function already normalised by WHATWG URL parsing.
 */
function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((part) => (/^(0|[1-9]\d{0,2})$/.test(part) ? Number(part) : Number.NaN));
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function parseIpv6(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  let rest = zone === -1 ? text : text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = rest.lastIndexOf(':');
  if (lastColon !== -1 && rest.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(rest.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = v4;
    // `::1.2.3.4` keeps its `::`; `a:b:c:d:e:f:1.2.3.4` also loses the colon before the tail.
    rest = rest.slice(0, lastColon + 1);
    if (!rest.endsWith('::')) rest = rest.slice(0, -1);
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0] ?? '');
  const after = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  const wanted = 8 - tail.length / 2;
  const given = head.length + after.length;
  if (halves.length === 1 ? given !== wanted : given >= wanted) return undefined;
  const groups = [...head, ...Array<string>(wanted - given).fill('0'), ...after];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return [...groups.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]), ...tail];
}

/** The address in `text` (IPv6 with or without brackets), or undefined when it is none. */
export function parseIpAddress(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (bare.includes(':')) {
    const bytes = parseIpv6(bare);
    return bytes === undefined ? undefined : { version: 6, bytes };
  }
  const bytes = parseIpv4(bare);
  return bytes === undefined ? undefined : { version: 4, bytes };
}

/** `address/prefix`, or a bare address (one host); host bits after the prefix must be zero. */
export function parseIpNetwork(text: string): IpNetwork | string {
  const [addressText = '', prefixText, extra] = text.split('/');
  const address = parseIpAddress(addressText);
  if (address === undefined || extra !== undefined) return `${text} is not an IP address or network`;
  const bits = address.bytes.length * 8;
  if (prefixText === undefined) return { address, prefix: bits };
  const prefix = /^(0|[1-9]\d{0,2})$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix <= bits)) return `${text}: the prefix must be 0–${String(bits)}`;
  const masked = maskAddress(address, prefix);
  if (masked.bytes.some((b, i) => b !== address.bytes[i]))
    return `${text} has bits set past its prefix (the network is ${formatNetwork({ address: masked, prefix })})`;
  return { address, prefix };
}

/** A comma-separated list of networks, with a problem per entry that is not one. */
export function parseIpNetworkList(text: string): { networks: IpNetwork[]; problems: string[] } {
  const networks: IpNetwork[] = [];
  const problems: string[] = [];
  for (const entry of text.split(',').map((e) => e.trim())) {
    if (entry === '') continue;
    const parsed = parseIpNetwork(entry);
    if (typeof parsed === 'string') problems.push(parsed);
    else networks.push(parsed);
  }
  return { networks, problems };
}

export function networkContains(network: IpNetwork, address: IpAddress): boolean {
  if (network.address.version !== address.version) return false;
  const masked = maskAddress(address, network.prefix);
  return masked.bytes.every((b, i) => b === network.address.bytes[i]);
}

function maskAddress(address: IpAddress, prefix: number): IpAddress {
  const bytes = address.bytes.map((b, i) => {
    const keep = Math.min(8, Math.max(0, prefix - i * 8));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  return { version: address.version, bytes };
}

/** Dotted decimal, or IPv6 as eight hex groups (uncompressed: only for messages). */
export function formatIpAddress(address: IpAddress): string {
  if (address.version === 4) return address.bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((address.bytes[i] ?? 0) << 8) | (address.bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

function formatNetwork(network: IpNetwork): string {
  return `${formatIpAddress(network.address)}/${String(network.prefix)}`;
}

const loopbackNetworks: readonly IpNetwork[] = [
  { address: { version: 4, bytes: [127, 0, 0, 0] }, prefix: 8 },
  { address: { version: 6, bytes: [...Array<number>(15).fill(0), 1] }, prefix: 128 },
];

/** Whether a URL's hostname names this machine: `localhost` (RFC 6761 §6.3) or a loopback address. */
export function isLoopbackHostname(hostname: string): boolean {
  if (hostname.toLowerCase() === 'localhost') return true;
  const address = parseIpAddress(hostname);
  return address !== undefined && loopbackNetworks.some((network) => networkContains(network, address));
}
