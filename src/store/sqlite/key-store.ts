/**
 * API keys on SQLite, stored only as keyed hashes: HMAC-SHA256 under a server secret that is not in the
 * database (KEY_HASH_SECRET, or a file in DATA_DIR: store/key-hash-secret.ts). Generated keys carry 192
 * random bits, but API_KEYS secrets are operator-chosen and may be guessable; with a keyed hash a copy of
 * the database alone does not let anyone test guesses offline. Still one indexed lookup per request.
 *
 * Rows written before migration 4 hold a plain SHA-256 and cannot be re-hashed without their secret:
 * `verify` (and syncEnvKeys) accept them and rewrite the row as HMAC the first time the secret is seen.
 */
import { ApiError } from '../../domain/errors.ts';
import type { ApiKeyRecord, KeyStore, KeyUpdate, NewKeyOptions } from '../../domain/ports.ts';
import { DEFAULT_LIMIT_SETTINGS, type KeyLimitSettings, type LimitField, type LimitSetting } from '../../domain/key-limits.ts';
// The one definition of the `whsec_` format; a pure function (node:crypto only), so this import
// brings no job machinery into the store.
import { generateWebhookSecret } from '../../domain/webhook-secret.ts';
import {
  displayPrefix,
  listEnvKeys,
  generateSecret,
  keyedHash,
  legacyHash,
  LIMIT_COLUMNS,
  newKeyId,
  parseEvents,
  toColumn,
  toRecord,
  type KeyRow as Row,
  type WebhookRow,
} from '../key-rows.ts';
import type { SqliteDatabase } from './database.ts';

export { KEY_PREFIX, generateSecret, keyedHash, legacyHash } from '../key-rows.ts';

export interface SqliteKeyStore extends KeyStore {
  /**
   * Makes the env-sourced keys exactly `secrets` (role user) and `adminSecrets` (role admin; a secret in both is
   * an admin): adds new ones, revokes env keys no longer listed, restores listed ones it had revoked itself, and
   * sets each listed env key's role. A key the operator revoked (`keys revoke`) stays revoked.
   */
  syncEnvKeys(secrets: string[], adminSecrets?: string[]): void;
}

export interface SqliteKeyStoreOptions {
  /** The HMAC key of the stored hashes (store/key-hash-secret.ts); the server and the CLI must use the same one. */
  hashKey: Buffer;
}

export function createSqliteKeyStore(db: SqliteDatabase, options: SqliteKeyStoreOptions): SqliteKeyStore {
  const hashOf = (secret: string) => keyedHash(options.hashKey, secret);
  const byHash = db.prepare(`SELECT * FROM api_keys WHERE hash = ?`);
  const byLegacyHash = db.prepare(`SELECT * FROM api_keys WHERE hash = ? AND hash_kind = 'sha256'`);
  const rehash = db.prepare(`UPDATE api_keys SET hash = ?, hash_kind = 'hmac-sha256' WHERE id = ? AND hash_kind = 'sha256'`);
  const byId = db.prepare(`SELECT * FROM api_keys WHERE id = ?`);
  const insert = db.prepare(
    `INSERT INTO api_keys (id, name, prefix, hash, hash_kind, source, created_at_ms, revoked_at_ms, role, limit_rpm, limit_concurrent, limit_daily_credits, limit_monthly_credits)
     VALUES (?, ?, ?, ?, 'hmac-sha256', ?, ?, NULL, ?, ?, ?, ?, ?)`,
  );
  const setEnvRole = db.prepare(`UPDATE api_keys SET role = ? WHERE id = ? AND source = 'env'`);
  const all = db.prepare(`SELECT * FROM api_keys ORDER BY created_at_ms, id`);
  // The operator's revoke also claims a key syncEnvKeys had revoked, so re-adding it to API_KEYS cannot revive it.
  const revokeByOperator = db.prepare(
    `UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, ?), revoked_by = 'cli' WHERE id = ? AND revoked_by IS NOT 'cli'`,
  );
  const revokeBySync = db.prepare(`UPDATE api_keys SET revoked_at_ms = ?, revoked_by = 'env' WHERE id = ? AND revoked_at_ms IS NULL`);
  const unrevokeSynced = db.prepare(`UPDATE api_keys SET revoked_at_ms = NULL, revoked_by = NULL WHERE hash = ? AND revoked_by = 'env'`);
  const webhookRow = db.prepare(`SELECT webhook_url, webhook_events, webhook_secret FROM api_keys WHERE id = ?`);
  const setWebhook = db.prepare(`UPDATE api_keys SET webhook_url = ?, webhook_events = ? WHERE id = ?`);
  const setSecret = db.prepare(`UPDATE api_keys SET webhook_secret = ? WHERE id = ?`);
  // Conditional, so two processes ensuring at once agree on one secret: the second update changes nothing.
  const setSecretIfMissing = db.prepare(`UPDATE api_keys SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL`);

  function requireWebhookRow(keyId: string): WebhookRow {
    const row = webhookRow.get(keyId) as WebhookRow | undefined;
    if (!row) throw new Error(`unknown API key ${keyId}`);
    return row;
  }

  /** The row of a presented secret, by its keyed hash, or by a pre-migration SHA-256 (re-hashed now). */
  function findBySecret(secret: string): Row | undefined {
    const hash = hashOf(secret);
    const row = byHash.get(hash) as Row | undefined;
    if (row) return row;
    const legacy = byLegacyHash.get(legacyHash(secret)) as Row | undefined;
    if (!legacy) return undefined;
    rehash.run(hash, legacy.id);
    return { ...legacy, hash };
  }

  function insertKey(name: string, source: 'env' | 'cli', secret: string, generated: boolean, options: NewKeyOptions = {}): ApiKeyRecord {
    const hash = hashOf(secret);
    // Env keys get an id derived from the (keyed) hash so that restarts keep the same id (and usage history).
    // Env keys made before migration 4 keep their ids, which came from the plain hash.
    const id = newKeyId(source, hash);
    const prefix = displayPrefix(secret, generated);
    const limits: KeyLimitSettings = { ...DEFAULT_LIMIT_SETTINGS, ...options.limits };
    const now = Date.now();
    insert.run(
      id, name, prefix, hash, source, now, options.role ?? 'user',
      toColumn(limits.requests_per_minute), toColumn(limits.max_concurrent_jobs), toColumn(limits.daily_credits), toColumn(limits.monthly_credits),
    );
    return { id, name, prefix, source, createdAtMs: now, revokedAtMs: null, revokedBy: null, role: options.role ?? 'user', limits };
  }

  return {
    async verify(secret) {
      const row = findBySecret(secret);
      if (!row || row.revoked_at_ms !== null) return null;
      return toRecord(row);
    },
    async create(name, source, secret, options) {
      const value = secret ?? generateSecret();
      if (findBySecret(value)) throw new Error('this key already exists');
      return { record: insertKey(name, source, value, secret === undefined, options), secret: value };
    },
    async list() {
      return (all.all() as Row[]).map(toRecord);
    },
    async get(id) {
      const row = byId.get(id) as Row | undefined;
      return row ? toRecord(row) : null;
    },
    async update(id, change: KeyUpdate) {
      return db.transaction(() => {
        const row = byId.get(id) as Row | undefined;
        if (!row) return null;
        if (change.role !== undefined && change.role !== row.role && row.source === 'env') {
          throw new ApiError('invalid_value', `the role of ${id} comes from the environment: list its secret in ADMIN_API_KEYS (admin) or API_KEYS (user) instead`, { param: 'role' });
        }
        const sets: string[] = [];
        const values: Array<string | number | null> = [];
        if (change.name !== undefined) sets.push('name = ?'), values.push(change.name);
        if (change.role !== undefined) sets.push('role = ?'), values.push(change.role);
        for (const [field, setting] of Object.entries(change.limits ?? {}) as Array<[LimitField, LimitSetting | undefined]>) {
          if (setting === undefined) continue;
          sets.push(`${LIMIT_COLUMNS[field]} = ?`);
          values.push(toColumn(setting));
        }
        if (sets.length > 0) db.prepare(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
        return toRecord(byId.get(id) as Row);
      })();
    },
    async revoke(id) {
      return revokeByOperator.run(Date.now(), id).changes > 0;
    },
    async webhookSettings(keyId) {
      const row = webhookRow.get(keyId) as WebhookRow | undefined;
      if (!row) return { url: null, events: [], hasSecret: false };
      return {
        url: row.webhook_url,
        events: row.webhook_url === null ? [] : parseEvents(row.webhook_events),
        hasSecret: row.webhook_secret !== null,
      };
    },
    async setDefaultWebhook(keyId, webhook) {
      const changed = webhook === null
        ? setWebhook.run(null, null, keyId).changes
        : setWebhook.run(webhook.url, JSON.stringify(webhook.events), keyId).changes;
      if (changed === 0) throw new Error(`unknown API key ${keyId}`);
    },
    async rotateWebhookSecret(keyId) {
      const secret = generateWebhookSecret();
      if (setSecret.run(secret, keyId).changes === 0) throw new Error(`unknown API key ${keyId}`);
      return secret;
    },
    async webhookSecret(keyId) {
      return (webhookRow.get(keyId) as WebhookRow | undefined)?.webhook_secret ?? null;
    },
    async ensureWebhookSecret(keyId) {
      setSecretIfMissing.run(generateWebhookSecret(), keyId);
      return requireWebhookRow(keyId).webhook_secret!;
    },
    syncEnvKeys(secrets, adminSecrets = []) {
      db.transaction(() => {
        const listed = listEnvKeys(secrets, adminSecrets);
        // Looking each listed secret up first re-hashes its pre-migration row, so the comparison below is on keyed hashes.
        const existing = new Map([...listed.keys()].map((secret) => [secret, findBySecret(secret)] as const));
        const wanted = new Set([...listed.keys()].map(hashOf));
        for (const row of db.prepare(`SELECT id, hash FROM api_keys WHERE source = 'env' AND revoked_at_ms IS NULL`).all() as Array<{ id: string; hash: string }>) {
          if (!wanted.has(row.hash)) revokeBySync.run(Date.now(), row.id);
        }
        for (const [secret, { name, role }] of listed) {
          const row = existing.get(secret);
          if (!row) insertKey(name, 'env', secret, false, { role });
          else if (row.source === 'env') {
            unrevokeSynced.run(row.hash);
            setEnvRole.run(role, row.id);
          }
        }
      })();
    },
  };
}
