/**
 * Reads of the usage ledger on SQLite. Rows are written by the job store, in the transaction that
 * marks a job succeeded (jobs/sqlite/job-store.ts), so there is one row per succeeded job.
 */
import type { UsageStore, UsageTotals } from '../../domain/ports.ts';
import type { SqliteDatabase } from './database.ts';

export function createSqliteUsageStore(db: SqliteDatabase): UsageStore {
  const byModel = db.prepare(
    `SELECT model, COUNT(*) AS generations, COALESCE(SUM(credits), 0) AS credits, COALESCE(SUM(usd), 0) AS usd
     FROM usage_ledger WHERE key_id = ? GROUP BY model ORDER BY model`,
  );
  return {
    async totals(keyId: string): Promise<UsageTotals> {
      const rows = byModel.all(keyId) as Array<{ model: string; generations: number; credits: number; usd: number }>;
      // Sums of floats: round to micro-dollars / whole credits so 3 × 0.0455 reads 0.1365.
      const models = rows.map((r) => ({ ...r, credits: Math.round(r.credits * 1e6) / 1e6, usd: Math.round(r.usd * 1e9) / 1e9 }));
      return {
        keyId,
        generations: models.reduce((s, r) => s + r.generations, 0),
        credits: Math.round(models.reduce((s, r) => s + r.credits, 0) * 1e6) / 1e6,
        usd: Math.round(models.reduce((s, r) => s + r.usd, 0) * 1e9) / 1e9,
        byModel: models,
      };
    },
  };
}
