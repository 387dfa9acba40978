/**
 * GET /healthz and GET /readyz: the state of every dependency of this process (observability/health-report.ts).
 * 200 with status "ok" once ready; 503 while loading, while draining, and while a dependency does
 * not answer ("degraded"). Both answer the same: /healthz for people and monitoring, /readyz the name
 * load balancers and orchestrators probe. No key is needed, so addresses in a failing check's detail
 * (a connection refused to 10.0.0.5:5432) are redacted as GET /v1/models redacts them.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HealthReporter } from '../../observability/health-report.ts';
import type { Role } from '../../config/config.ts';
import { redactAddresses } from './models.ts';

export interface HealthRouteDeps {
  role: Role;
  health: HealthReporter;
  isDraining: () => boolean;
}

export function registerHealthRoutes(app: FastifyInstance, deps: HealthRouteDeps): void {
  const answer = async (reply: FastifyReply) => {
    if (deps.isDraining()) return reply.code(503).send({ status: 'draining', role: deps.role });
    const report = await deps.health.report();
    return reply.code(report.status === 'ok' ? 200 : 503).send(redactAddresses(report));
  };
  app.get('/healthz', async (_request, reply) => answer(reply));
  app.get('/readyz', async (_request, reply) => answer(reply));
}
