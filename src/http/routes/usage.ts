/** GET /v1/usage — the caller's totals from the ledger. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { UsageStore } from '../../domain/ports.ts';

export function registerUsageRoutes(app: FastifyInstance, deps: { authenticate: preHandlerHookHandler; usage: UsageStore }): void {
  app.get('/v1/usage', { preHandler: deps.authenticate }, async (request) => {
    const totals = await deps.usage.totals(request.apiKey!.id);
    return {
      object: 'usage',
      key_id: totals.keyId,
      generations: totals.generations,
      credits_used: totals.credits,
      usd_spent: totals.usd,
      by_model: totals.byModel.map((m) => ({ model: m.model, generations: m.generations, credits_used: m.credits, usd_spent: m.usd })),
    };
  });
}
