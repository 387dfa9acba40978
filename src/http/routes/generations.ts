/** POST /v1/images/generations — the seed's endpoint. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ValidateFn } from '../../contracts/validate-generation.ts';
import type { GenerateImage } from '../../pipeline/generate-image.ts';

export interface GenerationRouteDeps {
  authenticate: preHandlerHookHandler;
  validateGeneration: ValidateFn;
  generateImage: GenerateImage;
}

export function registerGenerationRoutes(app: FastifyInstance, deps: GenerationRouteDeps): void {
  app.post('/v1/images/generations', { preHandler: deps.authenticate }, async (request, reply) => {
    const params = deps.validateGeneration(request.body);
    // The client going away cancels the work (and the engine's backend job); nothing is charged.
    const clientGone = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) clientGone.abort(new Error('client closed the connection'));
    };
    reply.raw.on('close', onClose);
    try {
      const out = await deps.generateImage(params, {
        requestId: request.id,
        keyId: request.apiKey!.id,
        signal: clientGone.signal,
        log: request.log,
      });
      request.log.info(
        { model: params.model, width: out.width, height: out.height, seed: out.seed, usd: out.usd, timings: out.timings },
        'image generated',
      );
      // Server-Timing (W3C): lets clients and the benchmark split engine time from our own share.
      reply.header('server-timing', Object.entries(out.timings).map(([k, v]) => `${k.replace(/_ms$/, '')};dur=${v}`).join(', '));
      const item = out.url !== null
        ? { url: out.url, seed: out.seed, revised_prompt: out.revisedPrompt }
        : { b64_json: out.b64Json, seed: out.seed, revised_prompt: out.revisedPrompt };
      return reply.send({
        created: out.createdMs,
        data: [item],
        meta: { usage: { credits_used: out.credits, usd_spent: out.usd } },
      });
    } finally {
      reply.raw.off('close', onClose);
    }
  });
}
