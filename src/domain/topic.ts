// Topics: a calling service's named lists of subscribers. A key is unique within its service
// (another service's key of the same name is a different topic).

export const topicKeyPattern = '^[a-z0-9][a-z0-9_.:-]{0,127}$';

/** Most user ids one subscribe or unsubscribe request may name. */
export const maxSubscribersPerRequest = 10_000;

/** Most subscribers (or topics) one listing page returns. */
export const maxTopicPage = 1000;
