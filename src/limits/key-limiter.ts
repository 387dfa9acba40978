/**
 * The KeyLimiter. Requests per minute: a sliding log behind the RequestWindow port (request-window.ts: in
 * memory by default; redis-request-window.ts shares it between API processes). Concurrency and
 * budgets: counted from the database (jobs queued or running; credits in the ledger since the start of the UTC
 * day / month) plus what this process has admitted but not yet written as a job. The prices of queued and running
 * jobs count against the budgets too, so a burst of async submits cannot overspend before any of them is charged.
 *
 * Admits of one key run one at a time (AdmitHolds.exclusive), so two concurrent requests cannot both take the
 * last slot or the last credits, and what an admitted request holds until its job is written is counted
 * with the database's figures. Both are in this process's memory by default; with Redis
 * (redis-admit-holds.ts) they are shared, and the limits hold exactly across API processes.
 */
import { ApiError } from '../domain/errors.ts';
import type { KeyLimits } from '../domain/key-limits.ts';
import type { AdmitRequest, CreditPeriodStatus, KeyLimiter, KeyLimitStatus, LimitHold, LimitUsageSource } from './ports.ts';
import { createMemoryAdmitHolds, type AdmitHolds } from './admit-holds.ts';
import { createMemoryRequestWindow, type RequestWindow, type WindowTake } from './request-window.ts';
import { utcDayStart, utcMonthStart, utcNextDayStart, utcNextMonthStart } from './utc-periods.ts';

export interface KeyLimiterDeps {
  usage: LimitUsageSource;
  /** The limits in force for a key (its own settings over the server's defaults). */
  limitsOf(keyId: string): Promise<KeyLimits>;
  /** Credits one image of the model costs (what the ledger will be charged). */
  priceCredits(model: string): number;
  /** Retry-After of the concurrency limit: about how long one of the key's jobs takes, s. */
  jobRetryAfterS(model: string): Promise<number>;
  /** The clock of the per-minute window and of the budget periods; tests inject one. */
  now?: () => number;
  /** The "minute", ms (of the default in-memory window). */
  windowMs?: number;
  /** Where the per-minute log lives; absent: in this process's memory. */
  window?: RequestWindow;
  /** Where admissions are serialized and their holds kept; absent: in this process's memory. */
  holds?: AdmitHolds;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
const NO_HOLD: LimitHold = { release() {} };

export function createKeyLimiter(deps: KeyLimiterDeps): KeyLimiter {
  const now = deps.now ?? Date.now;
  const windowMs = deps.windowMs ?? 60_000;
  const window = deps.window ?? createMemoryRequestWindow(windowMs);
  const holds = deps.holds ?? createMemoryAdmitHolds();

  async function inFlight(keyId: string): Promise<{ jobs: number; heldCredits: number }> {
    // The holds before the database: a job written in between counts twice (safe), never zero times.
    const own = await holds.held(keyId);
    let jobs = own.jobs;
    let heldCredits = own.credits;
    for (const { model, count } of await deps.usage.jobsInFlight(keyId)) {
      jobs += count;
      heldCredits += count * deps.priceCredits(model);
    }
    return { jobs, heldCredits: round6(heldCredits) };
  }

  async function period(keyId: string, limit: number | null, startMs: number, resetsAtMs: number, heldCredits: number): Promise<CreditPeriodStatus> {
    const used = round6(await deps.usage.creditsSince(keyId, startMs));
    return { used, held: heldCredits, remaining: limit === null ? null : Math.max(0, round6(limit - used - heldCredits)), resetsAtMs };
  }

  function budgetError(keyId: string, which: 'daily' | 'monthly', limit: number, state: CreditPeriodStatus, price: number, nowMs: number): ApiError {
    const held = state.held > 0 ? ` (${state.held} more are held by its queued or running jobs)` : '';
    return new ApiError(
      'budget_exceeded',
      `key ${keyId} has ${state.remaining} of its ${limit} ${which} credits left${held}; this request costs ${price} credits. ` +
        `The ${which} budget resets at ${new Date(state.resetsAtMs).toISOString()}`,
      { retryAfterS: Math.max(1, Math.ceil((state.resetsAtMs - nowMs) / 1000)) },
    );
  }

  /** The concurrency and budget checks of admit; holds the job's price and slot when they pass. */
  async function admitWithinBudgets(keyId: string, model: string, limits: KeyLimits, nowMs: number): Promise<LimitHold> {
    const price = round6(deps.priceCredits(model));
    const daily = limits.daily_credits;
    const monthly = limits.monthly_credits;
    const maxJobs = limits.max_concurrent_jobs;
    if (maxJobs !== null || daily !== null || monthly !== null) {
      const flight = await inFlight(keyId);
      if (maxJobs !== null && flight.jobs >= maxJobs) {
        throw new ApiError(
          'too_many_concurrent_jobs',
          `key ${keyId} is limited to ${maxJobs} concurrent jobs and has ${flight.jobs} queued or running; retry when one of them ends`,
          { retryAfterS: await deps.jobRetryAfterS(model) },
        );
      }
      if (daily !== null) {
        const state = await period(keyId, daily, utcDayStart(nowMs), utcNextDayStart(nowMs), flight.heldCredits);
        if (state.used + state.held + price > daily) throw budgetError(keyId, 'daily', daily, state, price, nowMs);
      }
      if (monthly !== null) {
        const state = await period(keyId, monthly, utcMonthStart(nowMs), utcNextMonthStart(nowMs), flight.heldCredits);
        if (state.used + state.held + price > monthly) throw budgetError(keyId, 'monthly', monthly, state, price, nowMs);
      }
    }
    return holds.add(keyId, price);
  }

  return {
    async admit({ keyId, model }: AdmitRequest) {
      const limits = await deps.limitsOf(keyId);
      // A key with no limit at all has nothing to count: no lock, no hold (no Redis round trips per request).
      if (Object.values(limits).every((v) => v === null)) return NO_HOLD;
      return holds.exclusive(keyId, async () => {
        const nowMs = now();
        const rpm = limits.requests_per_minute;
        // Checked and recorded in one step (atomic across processes sharing the window); given back below when a later check refuses.
        let place: Extract<WindowTake, { admitted: true }> | undefined;
        if (rpm !== null) {
          const taken = await window.take(keyId, rpm, nowMs);
          if (!taken.admitted) {
            const retryAfterS = Math.max(1, Math.ceil(taken.waitMs / 1000));
            throw new ApiError('rate_limited', `key ${keyId} is limited to ${rpm} requests per minute; retry in ${retryAfterS} s`, { retryAfterS });
          }
          place = taken;
        }
        try {
          return await admitWithinBudgets(keyId, model, limits, nowMs);
        } catch (err) {
          // A request refused by a later check is not charged to the window.
          await place?.undo();
          throw err;
        }
      });
    },

    async status(keyId: string): Promise<KeyLimitStatus> {
      const limits = await deps.limitsOf(keyId);
      const nowMs = now();
      const rpm = limits.requests_per_minute;
      const used = await window.count(keyId, nowMs);
      const flight = await inFlight(keyId);
      return {
        limits,
        requestsPerMinute: { used, remaining: rpm === null ? null : Math.max(0, rpm - used), resetInS: Math.ceil((await window.resetInMs(keyId, nowMs)) / 1000) },
        concurrentJobs: { inUse: flight.jobs, remaining: limits.max_concurrent_jobs === null ? null : Math.max(0, limits.max_concurrent_jobs - flight.jobs) },
        dailyCredits: await period(keyId, limits.daily_credits, utcDayStart(nowMs), utcNextDayStart(nowMs), flight.heldCredits),
        monthlyCredits: await period(keyId, limits.monthly_credits, utcMonthStart(nowMs), utcNextMonthStart(nowMs), flight.heldCredits),
      };
    },
  };
}
