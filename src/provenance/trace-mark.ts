/**
 * From a detected watermark to the generation it points to, scoped to who asks.
 *
 * Scoping rule: an API key sees the details (job id, model, size, time) of its own generations only. When the
 * mark belongs to another key's generation it is told just that (`other_key`): that this server made the
 * image, which the mark itself already says, and nothing about the other tenant's job. The operator (the
 * offline CLI, which reads the database directly) sees every matching row with its key id.
 */
import type { MarkedGeneration, MarkLedger, WatermarkPayload } from '../domain/ports.ts';

export type TraceScope = { kind: 'key'; keyId: string } | { kind: 'operator' };

export interface TracedGeneration {
  job_id: string | null;
  model: string;
  width: number;
  height: number;
  /** ms since epoch */
  created_at: number;
  /** Only in the operator's view. */
  key_id?: string;
}

export interface MarkTrace {
  /**
   * `yours`: the mark belongs to generations of the asking key (listed); `other_key`: to another key's
   * (details withheld); `not_found`: this server's issuer id but no ledger row (made before marks were
   * recorded, by another server sharing the issuer id, or a chance decode); `foreign_issuer`: another
   * issuer's mark. The operator gets `found` with every row instead of `yours` / `other_key`.
   */
  status: 'yours' | 'other_key' | 'found' | 'not_found' | 'foreign_issuer';
  issuer_id: number;
  generation_id: number;
  generations: TracedGeneration[];
}

/** Enough rows to show a request repeated with the same seed, not a dump of the ledger. */
const MAX_ROWS = 20;

const view = (g: MarkedGeneration, withKey: boolean): TracedGeneration => ({
  job_id: g.jobId,
  model: g.model,
  width: g.width,
  height: g.height,
  created_at: g.createdAtMs,
  ...(withKey ? { key_id: g.keyId } : {}),
});

export async function traceMark(ledger: MarkLedger, payload: WatermarkPayload, ownIssuerId: number, scope: TraceScope): Promise<MarkTrace> {
  const base = { issuer_id: payload.issuerId, generation_id: payload.generationId };
  if (payload.issuerId !== ownIssuerId) return { status: 'foreign_issuer', ...base, generations: [] };
  if (scope.kind === 'operator') {
    const rows = await ledger.findByMark(payload, MAX_ROWS);
    return { status: rows.length ? 'found' : 'not_found', ...base, generations: rows.map((g) => view(g, true)) };
  }
  // Rows of all keys are read and filtered here; the store stays a plain lookup. MAX_ROWS × 5 bounds the read
  // for a mark shared by many tenants' identical requests.
  const rows = await ledger.findByMark(payload, MAX_ROWS * 5);
  const own = rows.filter((g) => g.keyId === scope.keyId).slice(0, MAX_ROWS);
  if (own.length) return { status: 'yours', ...base, generations: own.map((g) => view(g, false)) };
  return { status: rows.length ? 'other_key' : 'not_found', ...base, generations: [] };
}
