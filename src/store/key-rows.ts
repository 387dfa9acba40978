/**
 * What the SQLite and Postgres key stores share: the hashing, the row ↔ record mapping and the limit columns.
 * Both stores have the same columns (api_keys), so a row read from either maps the same way.
 */
import crypto from 'node:crypto';
import type { ApiKeyRecord } from '../domain/ports.ts';
import { DEFAULT_LIMIT_SETTINGS, type KeyRole, type LimitField, type LimitSetting } from '../domain/key-limits.ts';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../domain/jobs.ts';

export const KEY_PREFIX = 'qis_';

/** The scheme of rows written before migration 4; only read, never written. */
export function legacyHash(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function keyedHash(hashKey: Buffer, secret: string): string {
  return crypto.createHmac('sha256', hashKey).update(secret, 'utf8').digest('hex');
}

export function generateSecret(): string {
  return KEY_PREFIX + crypto.randomBytes(24).toString('base64url');
}

export interface WebhookRow {
  webhook_url: string | null;
  webhook_events: string | null;
  webhook_secret: string | null;
}

/** A stored events list, read defensively: unknown names (a later downgrade) are dropped. */
export function parseEvents(json: string | null): WebhookEvent[] {
  if (json === null) return ['completed'];
  const parsed: unknown = JSON.parse(json);
  const events = Array.isArray(parsed) ? parsed.filter((e): e is WebhookEvent => (WEBHOOK_EVENTS as readonly unknown[]).includes(e)) : [];
  return events.length > 0 ? events : ['completed'];
}

export interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  hash: string;
  source: 'env' | 'cli';
  created_at_ms: number;
  revoked_at_ms: number | null;
  revoked_by: 'cli' | 'env' | null;
  role: KeyRole;
  limit_rpm: number | null;
  limit_concurrent: number | null;
  limit_daily_credits: number | null;
  limit_monthly_credits: number | null;
}

/** Limit columns: NULL follows the server default, -1 is "no limit" (migration 4). */
export const LIMIT_COLUMNS: Record<LimitField, 'limit_rpm' | 'limit_concurrent' | 'limit_daily_credits' | 'limit_monthly_credits'> = {
  requests_per_minute: 'limit_rpm',
  max_concurrent_jobs: 'limit_concurrent',
  daily_credits: 'limit_daily_credits',
  monthly_credits: 'limit_monthly_credits',
};
const NO_LIMIT = -1;

export function fromColumn(value: number | null): LimitSetting {
  if (value === null) return 'default';
  return value === NO_LIMIT ? null : value;
}

export function toColumn(setting: LimitSetting): number | null {
  if (setting === 'default') return null;
  return setting === null ? NO_LIMIT : setting;
}

export function toRecord(row: KeyRow): ApiKeyRecord {
  const limits = { ...DEFAULT_LIMIT_SETTINGS };
  for (const [field, column] of Object.entries(LIMIT_COLUMNS) as Array<[LimitField, keyof KeyRow]>) limits[field] = fromColumn(row[column] as number | null);
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    source: row.source,
    createdAtMs: row.created_at_ms,
    revokedAtMs: row.revoked_at_ms,
    revokedBy: row.revoked_by,
    role: row.role,
    limits,
  };
}

/** `qis_` + 4 characters for a key this store generated; nothing of any other secret (see ApiKeyRecord.prefix). */
export function displayPrefix(secret: string, generated: boolean): string {
  return generated ? secret.slice(0, KEY_PREFIX.length + 4) : '';
}

/**
 * A new key's id. Env keys get one derived from the (keyed) hash so that restarts keep the same id (and usage
 * history); env keys made before SQLite migration 4 keep their ids, which came from the plain hash.
 */
export function newKeyId(source: 'env' | 'cli', hash: string): string {
  return source === 'env' ? `key_env_${hash.slice(0, 12)}` : `key_${crypto.randomBytes(8).toString('hex')}`;
}

/** The env keys syncEnvKeys wants: each secret with its name and role (a secret in both lists is an admin). */
export function listEnvKeys(secrets: string[], adminSecrets: string[]): Map<string, { name: string; role: KeyRole }> {
  const listed = new Map<string, { name: string; role: KeyRole }>();
  secrets.forEach((secret, i) => listed.set(secret, { name: `API_KEYS[${i}]`, role: 'user' }));
  adminSecrets.forEach((secret, i) => listed.set(secret, { name: listed.get(secret)?.name ?? `ADMIN_API_KEYS[${i}]`, role: 'admin' }));
  return listed;
}
