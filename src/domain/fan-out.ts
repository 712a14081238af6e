// Expands one recipient of a notification into planned deliveries: one per channel x target.
// Pure: the fan-out stage loads the user, devices and service and writes the result.
import type { Channel } from './notification.js';

export interface FanOutUser {
  id: string;
  email: string | null;
  phone: string | null;
  webhookUrl: string | null;
  chatWebhookUrl: string | null;
}

/** The calling service's own targets, used when the user has none. */
export interface FanOutService {
  webhookUrl: string | null;
  chatWebhookUrl: string | null;
}

export interface FanOutDevice {
  id: string;
  enabled: boolean;
}

export interface PlannedDelivery {
  channel: Channel;
  /** 'inbox' for in_app, a device id for push, an address or URL otherwise. */
  target: string;
}

export const skipReasons = ['no_target', 'unknown_user'] as const;

export interface SkippedChannel {
  channel: Channel;
  reason: (typeof skipReasons)[number];
}

export interface FanOutPlan {
  deliveries: PlannedDelivery[];
  skipped: SkippedChannel[];
}

export function planDeliveries(
  channels: readonly Channel[],
  user: FanOutUser | undefined,
  devices: readonly FanOutDevice[],
  service: FanOutService,
): FanOutPlan {
  const deliveries: PlannedDelivery[] = [];
  const skipped: SkippedChannel[] = [];
  const noTarget = (channel: Channel): void => {
    skipped.push({ channel, reason: user === undefined ? 'unknown_user' : 'no_target' });
  };
  for (const channel of new Set(channels)) {
    switch (channel) {
      case 'in_app':
        // The inbox is keyed by user id, so it needs no registered user.
        deliveries.push({ channel, target: 'inbox' });
        break;
      case 'webhook': {
        const url = user?.webhookUrl ?? service.webhookUrl;
        if (url === null) noTarget(channel);
        else deliveries.push({ channel, target: url });
        break;
      }
      case 'push': {
        // Every enabled device of the user gets its own delivery.
        const enabled = devices.filter((d) => d.enabled);
        if (enabled.length === 0) noTarget(channel);
        for (const device of enabled) deliveries.push({ channel, target: device.id });
        break;
      }
      case 'email':
        if (user?.email == null) noTarget(channel);
        else deliveries.push({ channel, target: user.email });
        break;
      case 'sms':
        if (user?.phone == null) noTarget(channel);
        else deliveries.push({ channel, target: user.phone });
        break;
      case 'chat': {
        const url = user?.chatWebhookUrl ?? service.chatWebhookUrl;
        if (url === null) noTarget(channel);
        else deliveries.push({ channel, target: url });
        break;
      }
    }
  }
  return { deliveries, skipped };
}
