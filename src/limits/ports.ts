/**
 * Per-key limits behind one port, so that the in-process implementation (key-limiter.ts: a sliding window in
 * memory, counts from the database) can be replaced by one whose state lives in Redis when several processes
 * serve the same keys. Submit is the only caller of `admit`; GET /v1/usage reads `status`.
 */
import type { KeyLimits } from '../domain/key-limits.ts';

export interface AdmitRequest {
  keyId: string;
  /** Public model id: its price is what the budgets must cover. */
  model: string;
}

/** What an admitted submit holds until its job is durable (the store counts it from then on) or it failed. */
export interface LimitHold {
  /** Idempotent. */
  release(): void;
}

export interface KeyLimiter {
  /**
   * Admits one more job for the key or throws: 429 `rate_limited` (requests per minute) or
   * `too_many_concurrent_jobs`, 402 `budget_exceeded` (daily or monthly credits), each with Retry-After.
   * An admitted request counts against the per-minute window whatever happens next; its price and its
   * concurrency slot are held until `release()`.
   */
  admit(request: AdmitRequest): Promise<LimitHold>;
  /** The key's limits and what remains of each. */
  status(keyId: string): Promise<KeyLimitStatus>;
}

export interface KeyLimitStatus {
  limits: KeyLimits;
  requestsPerMinute: { used: number; remaining: number | null; resetInS: number };
  concurrentJobs: { inUse: number; remaining: number | null };
  dailyCredits: CreditPeriodStatus;
  monthlyCredits: CreditPeriodStatus;
}

export interface CreditPeriodStatus {
  /** Charged in this UTC day / month (the ledger). */
  used: number;
  /** Prices of the key's queued and running jobs, not charged yet. */
  held: number;
  /** limit − used − held, never below 0; null without a limit. */
  remaining: number | null;
  /** Start of the next period, ms since epoch. */
  resetsAtMs: number;
}

/**
 * Where the limiter reads what a key has spent and has in flight. The SQLite version reads the ledger
 * and the jobs table (store/sqlite/limit-usage.ts), so those figures already hold across processes
 * sharing the database file.
 */
export interface LimitUsageSource {
  /** Credits charged to the key at or after `sinceMs`. */
  creditsSince(keyId: string, sinceMs: number): Promise<number>;
  /** The key's queued and running jobs, counted per model. */
  jobsInFlight(keyId: string): Promise<Array<{ model: string; count: number }>>;
}
