/**
 * What the per-key limiter reads from Postgres: credits charged (the ledger, whole credits) and jobs in flight
 * (the jobs table). Every process reads the same rows, so budgets and concurrent-job counts hold across them
 * (what a process holds for a submit not yet durable stays in that process: limits/key-limiter.ts).
 */
import type pg from 'pg';
import type { LimitUsageSource } from '../../limits/ports.ts';

export function createPostgresLimitUsage(pool: pg.Pool): LimitUsageSource {
  return {
    async creditsSince(keyId, sinceMs) {
      // Index usage_ledger_key (key_id, created_at_ms). SUM(bigint) is numeric: cast back.
      const { rows } = await pool.query<{ credits: number }>(
        `SELECT COALESCE(SUM(credits), 0)::bigint AS credits FROM usage_ledger WHERE key_id = $1 AND created_at_ms >= $2`,
        [keyId, sinceMs],
      );
      return rows[0]!.credits;
    },
    async jobsInFlight(keyId) {
      // Index jobs_key_status.
      const { rows } = await pool.query<{ model: string; count: number }>(
        `SELECT model, COUNT(*) AS count FROM jobs WHERE key_id = $1 AND status IN ('queued', 'running') GROUP BY model ORDER BY model`,
        [keyId],
      );
      return rows;
    },
  };
}
