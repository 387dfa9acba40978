/** The API key object of the admin routes and the CLI: never the secret nor its hash. */
import type { ApiKeyRecord } from '../domain/ports.ts';
import { LIMIT_FIELDS, effectiveLimits, type KeyLimits } from '../domain/key-limits.ts';

export function renderKey(record: ApiKeyRecord, defaults: KeyLimits) {
  return {
    object: 'api_key',
    id: record.id,
    name: record.name,
    role: record.role,
    source: record.source,
    prefix: record.prefix,
    created_at: record.createdAtMs,
    revoked_at: record.revokedAtMs,
    revoked_by: record.revokedBy,
    // In force (null: no limit), and which of them follow the server's KEY_DEFAULT_* settings.
    limits: effectiveLimits(record.limits, defaults),
    limits_from_defaults: LIMIT_FIELDS.filter((f) => record.limits[f] === 'default'),
  };
}
