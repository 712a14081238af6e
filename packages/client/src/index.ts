// @herald/client: a typed client for Herald's HTTP API (Node 20+ and browsers).
export { HeraldClient, type HeraldClientOptions } from './client.js';
export type {
  Accepted,
  DeadLetter,
  Device,
  InboxItem,
  Notification,
  NotificationRequest,
  Template,
  User,
  UserToken,
} from './client.js';
export { HeraldHttpError, HeraldProblem, HeraldTimeout, type ProblemCode } from './problem.js';
export type { paths as ApiPaths, components as ApiComponents } from './generated/api.js';
export type { paths as QueryPaths } from './generated/query.js';
