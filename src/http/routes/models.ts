/** GET /v1/models (OpenAI's list shape) with the engine behind each public model and its health. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { Engine } from '../../domain/types.ts';
import type { ModelRunStats } from '../../jobs/job-runner.ts';

interface Describable {
  describe?: () => unknown;
}

interface ModelRouteDeps {
  authenticate: preHandlerHookHandler;
  engines: Map<string, Engine>;
  runStats: (model: string) => Promise<ModelRunStats>;
  startedAtS: number;
}

export function registerModelRoutes(app: FastifyInstance, deps: ModelRouteDeps): void {
  async function describeModel(id: string, engine: Engine) {
    const health = await engine.health().catch((err: Error) => ({ ok: false, detail: err.message }));
    const extra = (engine as unknown as Describable).describe?.();
    return {
      id,
      object: 'model',
      created: deps.startedAtS,
      owned_by: 'qwen-image-server',
      healthy: health.ok,
      engine: { id: engine.id, kind: engine.kind, description: engine.description, health },
      ...(extra && typeof extra === 'object' ? { backends: (extra as { backends?: unknown }).backends ?? extra } : {}),
      queue: await deps.runStats(id),
    };
  }

  app.get('/v1/models', { preHandler: deps.authenticate }, async () => ({
    object: 'list',
    data: await Promise.all([...deps.engines].map(([id, engine]) => describeModel(id, engine))),
  }));

  app.get('/v1/models/*', { preHandler: deps.authenticate }, async (request) => {
    const id = decodeURIComponent((request.params as { '*': string })['*']);
    const engine = deps.engines.get(id);
    if (!engine) throw new ApiError('model_not_found', `model "${id}" is not served here`, { param: 'model' });
    return describeModel(id, engine);
  });
}
