/**
 * PromptCache in Postgres (table from migration 1), shared by every process: a (prompt, seed) pair rewritten by
 * the LLM on one process is drawn with the same prompt on all of them, and after restarts.
 */
import type pg from 'pg';
import type { PromptCache } from '../../prompt/types.ts';

export interface PostgresPromptCacheOptions {
  /** Clock for `created_at_ms` (ms since epoch); injectable for tests. */
  now?: () => number;
}

export function createPostgresPromptCache(pool: pg.Pool, options: PostgresPromptCacheOptions = {}): PromptCache {
  const now = options.now ?? Date.now;
  return {
    async get(key) {
      return (await pool.query<{ value: string }>('SELECT value FROM prompt_cache WHERE key = $1', [key])).rows[0]?.value;
    },
    async set(key, value) {
      // First write wins (see PromptCache), also between processes: the primary key decides.
      await pool.query('INSERT INTO prompt_cache (key, value, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING', [key, value, now()]);
    },
  };
}
