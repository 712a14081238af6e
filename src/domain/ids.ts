// Notification ids have the form `service#uuid`: the calling service's name, '#', a UUID.
// Callers may supply one (so they know the id before Herald answers); Herald makes one otherwise.

export const serviceNamePattern = /^[a-z][a-z0-9_-]{0,62}$/;
/**
 * A canonical UUID, as JSON Schema pattern text. Ajv's `uuid` format also admits a `urn:uuid:`
 * prefix, which PostgreSQL's uuid type rejects.
 */
export const uuidPatternText =
  '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const notificationIdPattern =
  /^([a-z][a-z0-9_-]{0,62})#([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;

export interface NotificationId {
  service: string;
  uuid: string;
}

/** Parses `service#uuid`; returns undefined when malformed. The UUID is normalised to lower case. */
export function parseNotificationId(text: string): NotificationId | undefined {
  const match = notificationIdPattern.exec(text);
  if (match === null) return undefined;
  const [, service, uuid] = match;
  if (service === undefined || uuid === undefined) return undefined;
  return { service, uuid: uuid.toLowerCase() };
}

export function formatNotificationId(id: NotificationId): string {
  return `${id.service}#${id.uuid}`;
}

/**
 * A UUIDv7 (RFC 9562 §5.7) from a millisecond time and 10 random bytes: ids sort by creation
 * time, which keeps index inserts local. Randomness comes from the caller (domain has no I/O).
 */
export function uuidV7(unixMs: number, random: Uint8Array): string {
  if (random.length < 10) throw new RangeError('uuidV7 needs 10 random bytes');
  const hex = (b: number) => hexByte[b] ?? '';
  let ms = unixMs;
  let time = '';
  for (let i = 0; i < 6; i++) {
    time = hex(ms % 256) + time;
    ms = Math.floor(ms / 256);
  }
  const r = (i: number) => hex(random[i] ?? 0);
  const version = hex(((random[0] ?? 0) & 0x0f) | 0x70); // version 7
  const variant = hex(((random[2] ?? 0) & 0x3f) | 0x80); // variant 10
  return `${time.slice(0, 8)}-${time.slice(8)}-${version}${r(1)}-${variant}${r(3)}-${r(4)}${r(5)}${r(6)}${r(7)}${r(8)}${r(9)}`;
}

/** Two lowercase hex digits per byte value, so formatting an id is lookups and one template. */
const hexByte = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
