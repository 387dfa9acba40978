/**
 * Reads of the usage ledger on SQLite. Rows are written by the job store, in the transaction that
 * marks a job succeeded (jobs/sqlite/job-store.ts), so there is one row per succeeded job. Amounts are
 * whole credits and micro-USD (migration 6): the sums are exact, converted to USD once here.
 */
import type { UsageStore, UsageTotals } from '../../domain/ports.ts';
import { usageTotals } from '../usage-totals.ts';
import type { SqliteDatabase } from './database.ts';

export function createSqliteUsageStore(db: SqliteDatabase): UsageStore {
  const byModel = db.prepare(
    `SELECT model, COUNT(*) AS generations, COALESCE(SUM(credits), 0) AS credits, COALESCE(SUM(usd_micros), 0) AS usd_micros
     FROM usage_ledger WHERE key_id = ? GROUP BY model ORDER BY model`,
  );
  return {
    async totals(keyId: string): Promise<UsageTotals> {
      const rows = byModel.all(keyId) as Array<{ model: string; generations: number; credits: number; usd_micros: number }>;
      return usageTotals(keyId, rows);
    },
  };
}
