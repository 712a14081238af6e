// How users, devices and contact changes are shown: targets in full only to keys with users:read,
// URLs never beyond their origin (docs/security.md).
import type { ContactActor, Device, RecordedContactChange, User } from '../../db/stores/user-store.js';
import type { Caller } from '../../domain/caller.js';
import { maskTarget, presentDeviceToken, presentTarget } from '../../domain/contact.js';

/** Whether this caller sees contact targets in full (email, phone, device tokens; never URLs). */
export function seesInFull(caller: Caller): boolean {
  return caller.permissions.includes('users:read');
}

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
    webhook_url: url(user.webhookUrl),
    chat_webhook_url: url(user.chatWebhookUrl),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    ...(devices === undefined ? {} : { devices: devices.map((d) => presentDevice(d, inFull)) }),
  };
}

export function presentDevice(d: Device, inFull: boolean) {
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

export function presentChange(c: RecordedContactChange) {
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
