/**
 * API keys on SQLite, stored only as SHA-256 hashes. Keys are long random secrets (or operator-chosen
 * strings from API_KEYS), so a fast unsalted hash is enough to make a stolen database useless for
 * calling the API, and lets `verify` be one indexed lookup per request.
 */
import crypto from 'node:crypto';
import type { ApiKeyRecord, KeyStore } from '../../domain/ports.ts';
import type { SqliteDatabase } from './database.ts';

export const KEY_PREFIX = 'qis_';

export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateSecret(): string {
  return KEY_PREFIX + crypto.randomBytes(24).toString('base64url');
}

interface Row {
  id: string;
  name: string;
  prefix: string;
  source: 'env' | 'cli';
  created_at_ms: number;
  revoked_at_ms: number | null;
}

function toRecord(row: Row): ApiKeyRecord {
  return { id: row.id, name: row.name, prefix: row.prefix, source: row.source, createdAtMs: row.created_at_ms, revokedAtMs: row.revoked_at_ms };
}

export interface SqliteKeyStore extends KeyStore {
  /** Makes the env-sourced keys exactly `secrets`: adds new ones, revokes env keys no longer listed. */
  syncEnvKeys(secrets: string[]): void;
}

export function createSqliteKeyStore(db: SqliteDatabase): SqliteKeyStore {
  const byHash = db.prepare(`SELECT * FROM api_keys WHERE hash = ?`);
  const insert = db.prepare(
    `INSERT INTO api_keys (id, name, prefix, hash, source, created_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, NULL)`,
  );
  const all = db.prepare(`SELECT * FROM api_keys ORDER BY created_at_ms, id`);
  const revoke = db.prepare(`UPDATE api_keys SET revoked_at_ms = ? WHERE (id = ? OR prefix = ?) AND revoked_at_ms IS NULL`);
  const unrevoke = db.prepare(`UPDATE api_keys SET revoked_at_ms = NULL WHERE hash = ?`);

  function insertKey(name: string, source: 'env' | 'cli', secret: string): ApiKeyRecord {
    const hash = hashSecret(secret);
    // Env keys get an id derived from the hash so that restarts keep the same id (and usage history).
    const id = source === 'env' ? `key_env_${hash.slice(0, 12)}` : `key_${crypto.randomBytes(8).toString('hex')}`;
    const prefix = secret.slice(0, Math.min(8, Math.max(4, secret.length - 4)));
    const now = Date.now();
    insert.run(id, name, prefix, hash, source, now);
    return { id, name, prefix, source, createdAtMs: now, revokedAtMs: null };
  }

  return {
    async verify(secret) {
      const row = byHash.get(hashSecret(secret)) as Row | undefined;
      if (!row || row.revoked_at_ms !== null) return null;
      return toRecord(row);
    },
    async create(name, source, secret) {
      const value = secret ?? generateSecret();
      if (byHash.get(hashSecret(value))) throw new Error('this key already exists');
      return { record: insertKey(name, source, value), secret: value };
    },
    async list() {
      return (all.all() as Row[]).map(toRecord);
    },
    async revoke(idOrPrefix) {
      return revoke.run(Date.now(), idOrPrefix, idOrPrefix).changes > 0;
    },
    syncEnvKeys(secrets) {
      db.transaction(() => {
        const wanted = new Set(secrets.map(hashSecret));
        for (const row of db.prepare(`SELECT id, hash FROM api_keys WHERE source = 'env' AND revoked_at_ms IS NULL`).all() as Array<{ id: string; hash: string }>) {
          if (!wanted.has(row.hash)) revoke.run(Date.now(), row.id, row.id);
        }
        secrets.forEach((secret, i) => {
          const existing = byHash.get(hashSecret(secret)) as (Row & { hash: string }) | undefined;
          if (!existing) insertKey(`API_KEYS[${i}]`, 'env', secret);
          else if (existing.source === 'env' && existing.revoked_at_ms !== null) unrevoke.run(hashSecret(secret));
        });
      })();
    },
  };
}
