// The check every webhook or Slack URL a caller stores must pass: an absolute http(s) URL whose
// host is not an address the outbound policy refuses. Literal addresses and localhost names are
// refused here, at write time; other names are checked again on every connection, after DNS.
import type { OutboundPolicy } from '../domain/outbound-policy.js';

export interface TargetUrlProblem {
  code: 'invalid_url' | 'target_blocked';
  message: string;
}

export function checkTargetUrl(text: string, outbound: OutboundPolicy): TargetUrlProblem | undefined {
  if (!isHttpUrl(text)) return { code: 'invalid_url', message: 'is not an absolute http(s) URL' };
  const verdict = outbound.checkUrl(text);
  if (!verdict.allowed)
    return {
      code: 'target_blocked',
      message: `points at a ${verdict.kind} address, which Herald does not call`,
    };
  return undefined;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
