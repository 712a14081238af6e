// What the SMS adapters' HTTP calls and callbacks share: header lookup and why a call got no answer.

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
  if (signal.aborted) return 'aborted';
  const code = errorCode(error);
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  )
    return 'timeout';
  return `network error: ${code ?? 'unknown'}`;
}

function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if ('code' in error && typeof error.code === 'string') return error.code;
  return error.cause instanceof Error ? errorCode(error.cause) : error.name;
}
