// A user's device as push channels see it: one installation of one app on one platform.

export const platforms = ['ios', 'android', 'web'] as const;
export type Platform = (typeof platforms)[number];

/** The device a push delivery goes to, as registered through the devices API. */
export interface PushDevice {
  id: string;
  platform: Platform;
  /** The app the token belongs to: bundle id (APNs), app id (FCM), web app id (Web Push). */
  appId: string;
  /** APNs hex token, FCM registration token, or the Web Push subscription as JSON. */
  token: string;
}
