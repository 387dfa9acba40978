/** What the per-key limiter reads from SQLite: credits charged (the ledger, whole credits) and jobs in flight (the jobs table). */
import type { LimitUsageSource } from '../../limits/ports.ts';
import type { SqliteDatabase } from './database.ts';

export function createSqliteLimitUsage(db: SqliteDatabase): LimitUsageSource {
  // Index usage_ledger_key (key_id, created_at_ms). No upper bound: nothing is charged in the future.
  const spent = db.prepare(`SELECT COALESCE(SUM(credits), 0) AS credits FROM usage_ledger WHERE key_id = ? AND created_at_ms >= ?`);
  // Index jobs_key_status (migration 4).
  const inFlight = db.prepare(`SELECT model, COUNT(*) AS count FROM jobs WHERE key_id = ? AND status IN ('queued', 'running') GROUP BY model`);
  return {
    async creditsSince(keyId, sinceMs) {
      return (spent.get(keyId, sinceMs) as { credits: number }).credits;
    },
    async jobsInFlight(keyId) {
      return inFlight.all(keyId) as Array<{ model: string; count: number }>;
    },
  };
}
