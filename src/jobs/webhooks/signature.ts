/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0.0, "Signature scheme"):
 * HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${body}`, sent as `v1,<base64>` in the
 * `webhook-signature` header. The secret is shown to users as `whsec_<base64 key>`; the HMAC key is
 * the decoded bytes, so a receiver's stock Standard Webhooks library verifies what we send.
 *
 * Verifying, for receivers (the same steps any Standard Webhooks library takes):
 *
 *   import { verifyWebhook } from './signature.ts';
 *   const ok = verifyWebhook(process.env.WEBHOOK_SECRET!, req.headers, rawBody);
 *
 * `rawBody` must be the bytes as received: parsing the JSON and serialising it again can change them.
 */
import crypto from 'node:crypto';
import { WEBHOOK_SECRET_PREFIX } from '../../domain/webhook-secret.ts';

/** The usual replay window of Standard Webhooks libraries: 5 minutes either way. */
const DEFAULT_TOLERANCE_S = 300;

/** The prefix is optional, as in the reference libraries: a bare base64 key is accepted too. */
function hmacKey(secret: string): Buffer {
  const encoded = secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0) throw new Error('webhook secret is empty or not base64');
  return key;
}

function digest(secret: string, id: string, timestamp: number | string, body: string | Buffer): Buffer {
  return crypto
    .createHmac('sha256', hmacKey(secret))
    .update(`${id}.${timestamp}.`, 'utf8')
    .update(body)
    .digest();
}

/** The `webhook-signature` header value for one attempt. */
export function signWebhook(secret: string, id: string, timestampS: number, body: string | Buffer): string {
  return `v1,${digest(secret, id, timestampS, body).toString('base64')}`;
}

export type WebhookHeaders = Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | null {
  const direct = headers[name];
  const value = direct !== undefined ? direct : Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  if (Array.isArray(value)) return value.length === 1 ? value[0]! : null;
  return value ?? null;
}

export interface VerifyOptions {
  /** Largest accepted distance between webhook-timestamp and now, seconds (replay protection). */
  toleranceS?: number;
  /** Current time, unix seconds. */
  nowS?: number;
}

/**
 * True when `headers` carry a valid Standard Webhooks signature of `body` by `secret`, with a
 * timestamp within the tolerance. The signature header may list several space-separated signatures
 * (the spec's zero-downtime secret rotation); one `v1` match is enough. Comparison is constant-time.
 */
export function verifyWebhook(secret: string, headers: WebhookHeaders, body: string | Buffer, options: VerifyOptions = {}): boolean {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) return false;
  if (!/^\d{1,15}$/.test(timestamp)) return false;
  const timestampS = Number(timestamp);
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowS - timestampS) > (options.toleranceS ?? DEFAULT_TOLERANCE_S)) return false;

  // Signed as the header reads, so a receiver never re-formats the sender's timestamp.
  const expected = digest(secret, id, timestamp, body);
  let matched = false;
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    // No early exit: every listed signature is compared, so timing does not say which one matched.
    if (given.length === expected.length && crypto.timingSafeEqual(given, expected)) matched = true;
  }
  return matched;
}
