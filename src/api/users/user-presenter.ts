// How users, devices and contact changes are shown: targets in full only to keys with users:read,
// URLs never beyond their origin (docs/security.md).
import type { ContactActor, Device, RecordedContactChange, User } from '../../db/stores/user-store.js';
import type { Caller } from '../../domain/caller.js';
import { maskTarget, presentDeviceToken, presentTarget } from '../../domain/contact.js';
import { platforms } from '../../domain/device.js';
import { contactTargets } from '../../db/stores/user-store.js';
import { Type, type Static } from 'typebox';
import { Answer, Enum, Nullable, Timestamp } from '../../http/openapi-contract.js';

export const DeviceSchema = Answer({
  id: Type.String(),
  platform: Enum(platforms),
  app_id: Type.String(),
  token: Type.String({ description: 'Masked unless the key may read users (users:read).' }),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(Type.String({ description: 'Why a provider refused it (e.g. unregistered).' })),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const userProperties = {
  id: Type.String(),
  email: Nullable(Type.String({ description: 'Masked unless the key may read users (users:read).' })),
  phone: Nullable(Type.String({ description: 'Masked unless the key may read users (users:read).' })),
  locale: Type.String(),
  time_zone: Type.String(),
  attributes: Type.Record(Type.String(), Type.Unknown(), { description: 'What workflow conditions test.' }),
  webhook_url: Nullable(Type.String({ description: 'Shown to its origin only.' })),
  chat_webhook_url: Nullable(Type.String({ description: 'Shown to its origin only.' })),
  created_at: Timestamp(),
  updated_at: Timestamp(),
};

export const UserSchema = Answer(userProperties);
export const UserWithDevicesSchema = Answer({ ...userProperties, devices: Type.Array(DeviceSchema) });

export const ContactChangeSchema = Answer({
  target: Enum(contactTargets),
  action: Enum(['set', 'cleared', 'deleted']),
  value: Nullable(Type.String({ description: 'Masked.' })),
  key_id: Type.Integer({ description: 'The API key that made the change.' }),
  service: Type.String(),
  changed_at: Timestamp(),
});

/** Whether this caller sees contact targets in full (email, phone, device tokens; never URLs). */
export function seesInFull(caller: Caller): boolean {
  return caller.permissions.includes('users:read');
}

export function presentUser(user: User, inFull: boolean): Static<typeof UserSchema>;
export function presentUser(
  user: User,
  inFull: boolean,
  devices: Device[],
): Static<typeof UserWithDevicesSchema>;
export function presentUser(user: User, inFull: boolean, devices?: Device[]) {
  const shown = (channel: 'email' | 'sms', value: string | null) =>
    value === null ? null : presentTarget(channel, value, inFull);
  const url = (value: string | null) => (value === null ? null : maskTarget('webhook', value));
  return {
    id: user.id,
    email: shown('email', user.email),
    phone: shown('sms', user.phone),
    locale: user.locale,
    time_zone: user.timeZone,
    attributes: user.attributes,
    webhook_url: url(user.webhookUrl),
    chat_webhook_url: url(user.chatWebhookUrl),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    ...(devices === undefined ? {} : { devices: devices.map((d) => presentDevice(d, inFull)) }),
  };
}

export function presentDevice(d: Device, inFull: boolean): Static<typeof DeviceSchema> {
  return {
    id: d.id,
    platform: d.platform,
    app_id: d.appId,
    token: presentDeviceToken(d.platform, d.token, inFull),
    enabled: d.enabled,
    disabled_reason: d.disabledReason,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
  };
}

export function presentChange(c: RecordedContactChange): Static<typeof ContactChangeSchema> {
  return {
    target: c.target,
    action: c.action,
    value: c.value,
    key_id: c.keyId,
    service: c.serviceName,
    changed_at: c.changedAt.toISOString(),
  };
}

export function actorOf(caller: Caller): ContactActor {
  return { keyId: caller.keyId, serviceId: caller.serviceId };
}
