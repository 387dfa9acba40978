/** The ledger's per-model sums to the totals GET /v1/usage reports; shared by the SQLite and Postgres stores. */
import { microsToUsd } from '../domain/money.ts';
import type { UsageTotals } from '../domain/ports.ts';

export interface LedgerSums {
  model: string;
  generations: number;
  /** whole credits */
  credits: number;
  usd_micros: number;
}

export function usageTotals(keyId: string, rows: LedgerSums[]): UsageTotals {
  const byModel = rows.map((r) => ({ model: r.model, generations: r.generations, credits: r.credits, usd: microsToUsd(r.usd_micros) }));
  return {
    keyId,
    generations: rows.reduce((s, r) => s + r.generations, 0),
    credits: rows.reduce((s, r) => s + r.credits, 0),
    usd: microsToUsd(rows.reduce((s, r) => s + r.usd_micros, 0)),
    byModel,
  };
}
