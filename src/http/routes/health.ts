/** GET /healthz — 200 once every engine has loaded, 503 before that and while draining. */
import type { FastifyInstance } from 'fastify';

export function registerHealthRoutes(app: FastifyInstance, deps: { isReady: () => boolean; isDraining: () => boolean }): void {
  app.get('/healthz', async (_request, reply) => {
    if (deps.isDraining()) return reply.code(503).send({ status: 'draining' });
    if (!deps.isReady()) return reply.code(503).send({ status: 'loading' });
    return { status: 'ok' };
  });
}
