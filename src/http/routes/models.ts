/** GET /v1/models (OpenAI's list shape) with the engine behind each public model and its health. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { ModelSlot } from '../../pipeline/generate-image.ts';

interface Describable {
  describe?: () => unknown;
}

export function registerModelRoutes(app: FastifyInstance, deps: { authenticate: preHandlerHookHandler; models: Map<string, ModelSlot>; startedAtS: number }): void {
  async function describeModel(id: string, slot: ModelSlot) {
    const health = await slot.engine.health().catch((err: Error) => ({ ok: false, detail: err.message }));
    const extra = (slot.engine as unknown as Describable).describe?.();
    return {
      id,
      object: 'model',
      created: deps.startedAtS,
      owned_by: 'qwen-image-server',
      healthy: health.ok,
      engine: { id: slot.engine.id, kind: slot.engine.kind, description: slot.engine.description, health },
      ...(extra && typeof extra === 'object' ? { backends: (extra as { backends?: unknown }).backends ?? extra } : {}),
      queue: slot.queue.stats(),
    };
  }

  app.get('/v1/models', { preHandler: deps.authenticate }, async () => ({
    object: 'list',
    data: await Promise.all([...deps.models].map(([id, slot]) => describeModel(id, slot))),
  }));

  app.get('/v1/models/*', { preHandler: deps.authenticate }, async (request) => {
    const id = decodeURIComponent((request.params as { '*': string })['*']);
    const slot = deps.models.get(id);
    if (!slot) throw new ApiError('model_not_found', `model "${id}" is not served here`, { param: 'model' });
    return describeModel(id, slot);
  });
}
