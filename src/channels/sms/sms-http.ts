// What the SMS adapters' HTTP calls and callbacks share: header lookup and why a call got no answer.
import { networkReason } from '../network-reason.js';

/** A request header by its lower-case name, whatever case the map's keys have. */
export function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return typeof value === 'string' ? value : value?.[0];
  }
  return undefined;
}

/** Why a call got no answer: our deadline, the dispatcher's abort, or the network. */
export function networkFailure(error: unknown, signal: AbortSignal): string {
  return signal.aborted ? 'aborted' : networkReason(error);
}
