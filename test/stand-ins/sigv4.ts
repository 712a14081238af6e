// AWS Signature Version 4, checked as AWS checks it: the stand-ins (SES, SQS) recompute the
// signature with @smithy/signature-v4 from the request they received and the secret key they
// know, and refuse a request whose signature differs.
import { createHash, createHmac, timingSafeEqual, type BinaryLike } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest, SourceData } from '@smithy/types';

function bytes(data: SourceData): BinaryLike {
  if (typeof data === 'string') return data;
  return data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** SigV4's hash and HMAC over node:crypto, in the shape SignatureV4 expects (@aws-crypto's Sha256). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

export interface SigV4Expectation {
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  service: string;
}

/** Why a request is refused: no usable Authorization header, an unknown key, or a wrong signature. */
export type SigV4Refusal = 'malformed' | 'unknown_key' | 'mismatch';

/** Recomputes the SigV4 signature of what arrived; the refusal, or null when it matches. */
export async function checkSigV4(
  req: IncomingMessage,
  body: Buffer,
  expected: SigV4Expectation,
): Promise<SigV4Refusal | null> {
  const auth = req.headers.authorization ?? '';
  const parts =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  const amzDate = req.headers['x-amz-date'];
  if (parts === null || typeof amzDate !== 'string') return 'malformed';
  const [, accessKeyId, , region, service, signedHeaders, signature] = parts as unknown as string[];
  if (accessKeyId !== expected.credentials.accessKeyId) return 'unknown_key';
  const headers: Record<string, string> = {};
  for (const name of (signedHeaders ?? '').split(';')) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const request: HttpRequest = {
    method: req.method ?? 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
    body,
  };
  const signer = new SignatureV4({
    credentials: expected.credentials,
    region: region ?? '',
    service: service ?? '',
    sha256: NodeSha256,
  });
  const signingDate = new Date(
    amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
  );
  const signed = await signer.sign(request, { signingDate });
  const recomputed = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const matches =
    region === expected.region &&
    service === expected.service &&
    recomputed.length === signature?.length &&
    timingSafeEqual(Buffer.from(recomputed), Buffer.from(signature));
  return matches ? null : 'mismatch';
}
