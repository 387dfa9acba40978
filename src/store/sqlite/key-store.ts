/**
 * API keys on SQLite, stored only as SHA-256 hashes. Keys are long random secrets (or operator-chosen
 * strings from API_KEYS), so a fast unsalted hash is enough to make a stolen database useless for
 * calling the API, and lets `verify` be one indexed lookup per request.
 */
import crypto from 'node:crypto';
import type { ApiKeyRecord, KeyStore } from '../../domain/ports.ts';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../domain/jobs.ts';
// The one definition of the `whsec_` format; a pure function (node:crypto only), so this import
// brings no job machinery into the store.
import { generateWebhookSecret } from '../../domain/webhook-secret.ts';
import type { SqliteDatabase } from './database.ts';

export const KEY_PREFIX = 'qis_';

export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateSecret(): string {
  return KEY_PREFIX + crypto.randomBytes(24).toString('base64url');
}

interface WebhookRow {
  webhook_url: string | null;
  webhook_events: string | null;
  webhook_secret: string | null;
}

/** A stored events list, read defensively: unknown names (a later downgrade) are dropped. */
function parseEvents(json: string | null): WebhookEvent[] {
  if (json === null) return ['completed'];
  const parsed: unknown = JSON.parse(json);
  const events = Array.isArray(parsed) ? parsed.filter((e): e is WebhookEvent => (WEBHOOK_EVENTS as readonly unknown[]).includes(e)) : [];
  return events.length > 0 ? events : ['completed'];
}

interface Row {
  id: string;
  name: string;
  prefix: string;
  source: 'env' | 'cli';
  created_at_ms: number;
  revoked_at_ms: number | null;
  revoked_by: 'cli' | 'env' | null;
}

function toRecord(row: Row): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    source: row.source,
    createdAtMs: row.created_at_ms,
    revokedAtMs: row.revoked_at_ms,
    revokedBy: row.revoked_by,
  };
}

/** `qis_` + 4 characters for a key this store generated; nothing of any other secret (see ApiKeyRecord.prefix). */
function displayPrefix(secret: string, generated: boolean): string {
  return generated ? secret.slice(0, KEY_PREFIX.length + 4) : '';
}

export interface SqliteKeyStore extends KeyStore {
  /**
   * Makes the env-sourced keys exactly `secrets`: adds new ones, revokes env keys no longer listed, and restores
   * listed ones it had revoked itself. A key the operator revoked (`keys revoke`) stays revoked.
   */
  syncEnvKeys(secrets: string[]): void;
}

export function createSqliteKeyStore(db: SqliteDatabase): SqliteKeyStore {
  const byHash = db.prepare(`SELECT * FROM api_keys WHERE hash = ?`);
  const insert = db.prepare(
    `INSERT INTO api_keys (id, name, prefix, hash, source, created_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, NULL)`,
  );
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

  function insertKey(name: string, source: 'env' | 'cli', secret: string, generated: boolean): ApiKeyRecord {
    const hash = hashSecret(secret);
    // Env keys get an id derived from the hash so that restarts keep the same id (and usage history).
    const id = source === 'env' ? `key_env_${hash.slice(0, 12)}` : `key_${crypto.randomBytes(8).toString('hex')}`;
    const prefix = displayPrefix(secret, generated);
    const now = Date.now();
    insert.run(id, name, prefix, hash, source, now);
    return { id, name, prefix, source, createdAtMs: now, revokedAtMs: null, revokedBy: null };
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
      return { record: insertKey(name, source, value, secret === undefined), secret: value };
    },
    async list() {
      return (all.all() as Row[]).map(toRecord);
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
    syncEnvKeys(secrets) {
      db.transaction(() => {
        const wanted = new Set(secrets.map(hashSecret));
        for (const row of db.prepare(`SELECT id, hash FROM api_keys WHERE source = 'env' AND revoked_at_ms IS NULL`).all() as Array<{ id: string; hash: string }>) {
          if (!wanted.has(row.hash)) revokeBySync.run(Date.now(), row.id);
        }
        secrets.forEach((secret, i) => {
          const existing = byHash.get(hashSecret(secret)) as (Row & { hash: string }) | undefined;
          if (!existing) insertKey(`API_KEYS[${i}]`, 'env', secret, false);
          else if (existing.source === 'env') unrevokeSynced.run(existing.hash);
        });
      })();
    },
  };
}
