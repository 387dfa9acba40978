/** GET /v1/usage — the caller's totals from the ledger, and its limits with what remains of each. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { UsageStore } from '../../domain/ports.ts';
import type { CreditPeriodStatus, KeyLimiter } from '../../limits/ports.ts';

export interface UsageRouteDeps {
  authenticate: preHandlerHookHandler;
  usage: UsageStore;
  limiter: Pick<KeyLimiter, 'status'>;
}

const periodView = (limit: number | null, p: CreditPeriodStatus) => ({
  limit,
  used: p.used,
  held: p.held,
  remaining: p.remaining,
  resets_at: new Date(p.resetsAtMs).toISOString(),
});

/** The usage object of one key (also what the admin routes list). */
export async function renderUsage(deps: Pick<UsageRouteDeps, 'usage' | 'limiter'>, keyId: string) {
  const [totals, status] = await Promise.all([deps.usage.totals(keyId), deps.limiter.status(keyId)]);
  return {
    object: 'usage',
    key_id: totals.keyId,
    generations: totals.generations,
    credits_used: totals.credits,
    usd_spent: totals.usd,
    by_model: totals.byModel.map((m) => ({ model: m.model, generations: m.generations, credits_used: m.credits, usd_spent: m.usd })),
    // limit null: none. remaining counts what queued and running jobs hold (charged when they succeed).
    limits: {
      requests_per_minute: {
        limit: status.limits.requests_per_minute,
        used: status.requestsPerMinute.used,
        remaining: status.requestsPerMinute.remaining,
        resets_in_s: status.requestsPerMinute.resetInS,
      },
      max_concurrent_jobs: { limit: status.limits.max_concurrent_jobs, in_use: status.concurrentJobs.inUse, remaining: status.concurrentJobs.remaining },
      daily_credits: periodView(status.limits.daily_credits, status.dailyCredits),
      monthly_credits: periodView(status.limits.monthly_credits, status.monthlyCredits),
    },
  };
}

export function registerUsageRoutes(app: FastifyInstance, deps: UsageRouteDeps): void {
  app.get('/v1/usage', { preHandler: deps.authenticate }, async (request) => renderUsage(deps, request.apiKey!.id));
}
