/**
 * API keys in Postgres: the same rules as the SQLite store (store/sqlite/key-store.ts): keyed hashes only, env
 * keys synced from API_KEYS / ADMIN_API_KEYS, operator revocations permanent. There are no pre-HMAC rows here
 * (the Postgres schema starts at keyed hashes), so a secret is one indexed lookup.
 *
 * Concurrency: several processes share this table. syncEnvKeys runs under an advisory lock (two API processes
 * starting at once would otherwise both insert the same env key); the webhook secret is set with a conditional
 * UPDATE, which Postgres serialises on the row, so concurrent ensureWebhookSecret calls agree on one secret.
 */
import type pg from 'pg';
import { ApiError } from '../../domain/errors.ts';
import type { ApiKeyRecord, KeyStore, KeyUpdate, NewKeyOptions } from '../../domain/ports.ts';
import { DEFAULT_LIMIT_SETTINGS, type KeyLimitSettings, type LimitField, type LimitSetting } from '../../domain/key-limits.ts';
import { generateWebhookSecret } from '../../domain/webhook-secret.ts';
import {
  displayPrefix,
  generateSecret,
  keyedHash,
  LIMIT_COLUMNS,
  listEnvKeys,
  newKeyId,
  parseEvents,
  toColumn,
  toRecord,
  type KeyRow,
  type WebhookRow,
} from '../key-rows.ts';
import { inTransaction, isUniqueViolation } from './pool.ts';

/** Advisory lock of syncEnvKeys; an arbitrary constant, distinct from the migrations' (migrations.ts). */
const ENV_SYNC_LOCK_ID = 716_973_002;

const KEY_COLUMNS = `id, name, prefix, hash, source, created_at_ms, revoked_at_ms, revoked_by, role,
  limit_rpm, limit_concurrent, limit_daily_credits, limit_monthly_credits`;

export interface PostgresKeyStore extends KeyStore {
  /** As SqliteKeyStore.syncEnvKeys, asynchronous; safe when several processes start at once. */
  syncEnvKeys(secrets: string[], adminSecrets?: string[]): Promise<void>;
}

export interface PostgresKeyStoreOptions {
  /** The HMAC key of the stored hashes (store/key-hash-secret.ts): every process must use the same one. */
  hashKey: Buffer;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

export function createPostgresKeyStore(pool: pg.Pool, options: PostgresKeyStoreOptions): PostgresKeyStore {
  const hashOf = (secret: string) => keyedHash(options.hashKey, secret);

  async function rowByHash(db: Queryable, hash: string): Promise<KeyRow | undefined> {
    return (await db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE hash = $1`, [hash])).rows[0];
  }

  async function rowById(db: Queryable, id: string, lock = false): Promise<KeyRow | undefined> {
    return (await db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])).rows[0];
  }

  async function webhookRow(keyId: string): Promise<WebhookRow | undefined> {
    return (await pool.query<WebhookRow>(`SELECT webhook_url, webhook_events, webhook_secret FROM api_keys WHERE id = $1`, [keyId])).rows[0];
  }

  async function insertKey(db: Queryable, name: string, source: 'env' | 'cli', secret: string, generated: boolean, options: NewKeyOptions = {}): Promise<ApiKeyRecord> {
    const hash = hashOf(secret);
    const id = newKeyId(source, hash);
    const prefix = displayPrefix(secret, generated);
    const limits: KeyLimitSettings = { ...DEFAULT_LIMIT_SETTINGS, ...options.limits };
    const role = options.role ?? 'user';
    const now = Date.now();
    await db.query(
      `INSERT INTO api_keys (id, name, prefix, hash, source, created_at_ms, role, limit_rpm, limit_concurrent, limit_daily_credits, limit_monthly_credits)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [id, name, prefix, hash, source, now, role,
        toColumn(limits.requests_per_minute), toColumn(limits.max_concurrent_jobs), toColumn(limits.daily_credits), toColumn(limits.monthly_credits)],
    );
    return { id, name, prefix, source, createdAtMs: now, revokedAtMs: null, revokedBy: null, role, limits };
  }

  return {
    async verify(secret) {
      const row = await rowByHash(pool, hashOf(secret));
      if (!row || row.revoked_at_ms !== null) return null;
      return toRecord(row);
    },
    async create(name, source, secret, options) {
      const value = secret ?? generateSecret();
      try {
        return { record: await insertKey(pool, name, source, value, secret === undefined, options), secret: value };
      } catch (err) {
        // The hash column is UNIQUE: the check and the insert are one statement, also between processes.
        if (isUniqueViolation(err)) throw new Error('this key already exists');
        throw err;
      }
    },
    async list() {
      return (await pool.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id`)).rows.map(toRecord);
    },
    async get(id) {
      const row = await rowById(pool, id);
      return row ? toRecord(row) : null;
    },
    async update(id, change: KeyUpdate) {
      return inTransaction(pool, async (client) => {
        const row = await rowById(client, id, true);
        if (!row) return null;
        if (change.role !== undefined && change.role !== row.role && row.source === 'env') {
          throw new ApiError('invalid_value', `the role of ${id} comes from the environment: list its secret in ADMIN_API_KEYS (admin) or API_KEYS (user) instead`, { param: 'role' });
        }
        const sets: string[] = [];
        const values: Array<string | number | null> = [];
        const set = (column: string, value: string | number | null) => {
          values.push(value);
          sets.push(`${column} = $${values.length}`);
        };
        if (change.name !== undefined) set('name', change.name);
        if (change.role !== undefined) set('role', change.role);
        for (const [field, setting] of Object.entries(change.limits ?? {}) as Array<[LimitField, LimitSetting | undefined]>) {
          if (setting !== undefined) set(LIMIT_COLUMNS[field], toColumn(setting));
        }
        if (sets.length > 0) {
          values.push(id);
          await client.query(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = $${values.length}`, values);
        }
        return toRecord((await rowById(client, id))!);
      });
    },
    async revoke(id) {
      // The operator's revoke also claims a key syncEnvKeys had revoked, so re-adding it to API_KEYS cannot revive it.
      const result = await pool.query(
        `UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1), revoked_by = 'cli' WHERE id = $2 AND revoked_by IS DISTINCT FROM 'cli'`,
        [Date.now(), id],
      );
      return (result.rowCount ?? 0) > 0;
    },
    async webhookSettings(keyId) {
      const row = await webhookRow(keyId);
      if (!row) return { url: null, events: [], hasSecret: false };
      return { url: row.webhook_url, events: row.webhook_url === null ? [] : parseEvents(row.webhook_events), hasSecret: row.webhook_secret !== null };
    },
    async setDefaultWebhook(keyId, webhook) {
      const result = await pool.query(`UPDATE api_keys SET webhook_url = $1, webhook_events = $2 WHERE id = $3`, [
        webhook?.url ?? null,
        webhook ? JSON.stringify(webhook.events) : null,
        keyId,
      ]);
      if ((result.rowCount ?? 0) === 0) throw new Error(`unknown API key ${keyId}`);
    },
    async rotateWebhookSecret(keyId) {
      const secret = generateWebhookSecret();
      const result = await pool.query(`UPDATE api_keys SET webhook_secret = $1 WHERE id = $2`, [secret, keyId]);
      if ((result.rowCount ?? 0) === 0) throw new Error(`unknown API key ${keyId}`);
      return secret;
    },
    async webhookSecret(keyId) {
      return (await webhookRow(keyId))?.webhook_secret ?? null;
    },
    async ensureWebhookSecret(keyId) {
      // One statement: a concurrent caller waits on the row lock, then re-reads the row and keeps the winner's secret.
      const row = (
        await pool.query<{ webhook_secret: string }>(
          `UPDATE api_keys SET webhook_secret = COALESCE(webhook_secret, $1) WHERE id = $2 RETURNING webhook_secret`,
          [generateWebhookSecret(), keyId],
        )
      ).rows[0];
      if (!row) throw new Error(`unknown API key ${keyId}`);
      return row.webhook_secret;
    },
    async syncEnvKeys(secrets, adminSecrets = []) {
      await inTransaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [ENV_SYNC_LOCK_ID]);
        const listed = listEnvKeys(secrets, adminSecrets);
        const wanted = new Map([...listed.keys()].map((secret) => [hashOf(secret), secret] as const));
        const now = Date.now();
        const active = (await client.query<{ id: string; hash: string }>(`SELECT id, hash FROM api_keys WHERE source = 'env' AND revoked_at_ms IS NULL`)).rows;
        for (const row of active) {
          if (!wanted.has(row.hash)) await client.query(`UPDATE api_keys SET revoked_at_ms = $1, revoked_by = 'env' WHERE id = $2 AND revoked_at_ms IS NULL`, [now, row.id]);
        }
        for (const [hash, secret] of wanted) {
          const { name, role } = listed.get(secret)!;
          const row = await rowByHash(client, hash);
          if (!row) await insertKey(client, name, 'env', secret, false, { role });
          else if (row.source === 'env') {
            await client.query(`UPDATE api_keys SET revoked_at_ms = NULL, revoked_by = NULL WHERE id = $1 AND revoked_by = 'env'`, [row.id]);
            await client.query(`UPDATE api_keys SET role = $1 WHERE id = $2`, [role, row.id]);
          }
        }
      });
    },
  };
}
