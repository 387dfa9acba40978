/**
 * PromptCache in SQLite, so a (prompt, seed) pair rewritten by the LLM is drawn with the same prompt after a restart.
 * Shares the server's better-sqlite3 connection (synchronous: a lookup by primary key is microseconds) and owns one
 * table, created here when missing.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { PromptCache } from '../../prompt/types.ts';

export interface SqlitePromptCacheOptions {
  /** Clock for `created_at_ms` (ms since epoch); injectable for tests. */
  now?: () => number;
}

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS prompt_cache (
    key TEXT PRIMARY KEY,           -- promptCacheKey(): sha256 hex of (rules version, model, edit flag, seed, prompt)
    value TEXT NOT NULL,            -- the accepted rewrite
    created_at_ms INTEGER NOT NULL  -- when it was first stored, ms since epoch; for pruning by hand
  )`;

export function createSqlitePromptCache(db: BetterSqlite3.Database, options: SqlitePromptCacheOptions = {}): PromptCache {
  const now = options.now ?? Date.now;
  db.exec(CREATE_TABLE);
  const select = db.prepare<[string], { value: string }>('SELECT value FROM prompt_cache WHERE key = ?');
  // First write wins: a rewrite that has been served stays the answer for its key (see PromptCache).
  const insert = db.prepare<[string, string, number]>(
    'INSERT INTO prompt_cache (key, value, created_at_ms) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING',
  );
  return {
    get: async (key) => select.get(key)?.value,
    async set(key, value) {
      insert.run(key, value, now());
    },
  };
}
