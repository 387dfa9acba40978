/**
 * The format of a key's webhook signing secret (Standard Webhooks: `whsec_` + base64 of the HMAC key).
 * In domain/ because both the key store (which keeps it) and the signer (which uses it) need it.
 */
import crypto from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** The spec asks for at least 24 random bytes (192 bits). */
const SECRET_BYTES = 24;

export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + crypto.randomBytes(SECRET_BYTES).toString('base64');
}
