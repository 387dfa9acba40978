/** GET /v1/models (OpenAI's list shape) with the engine behind each public model and its health. */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { Engine } from '../../domain/types.ts';
import { isDescribableEngine } from '../../engines/router/types.ts';
import type { ModelRunStats } from '../../jobs/job-runner.ts';

interface ModelRouteDeps {
  authenticate: preHandlerHookHandler;
  engines: Map<string, Engine>;
  runStats: (model: string) => Promise<ModelRunStats>;
  startedAtS: number;
}

/**
 * Where the backends are is the operator's business, not every tenant's: addresses in engine
 * descriptions and health details (a URL, host:port, an IP in an ECONNREFUSED message) are replaced
 * by "<address>". Backend ids, kinds and states stay: they say what serves the model.
 */
const ADDRESS = new RegExp(
  [
    String.raw`\b[a-z][a-z0-9+.-]*://[^\s,;)"']+`, // any URL
    String.raw`\[[0-9a-f:.]+\](?::\d+)?`, // [IPv6] or [IPv6]:port
    String.raw`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b`, // IPv4 or IPv4:port
    String.raw`\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*:\d{2,5}\b`, // host:port
  ].join('|'),
  'gi',
);

export function redactAddresses<T>(value: T): T {
  if (typeof value === 'string') return value.replace(ADDRESS, '<address>') as T;
  if (Array.isArray(value)) return value.map((v) => redactAddresses(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactAddresses(v)])) as T;
  }
  return value;
}

export function registerModelRoutes(app: FastifyInstance, deps: ModelRouteDeps): void {
  async function describeModel(id: string, engine: Engine) {
    const health = await engine.health().catch((err: Error) => ({ ok: false, detail: err.message }));
    return redactAddresses({
      id,
      object: 'model',
      created: deps.startedAtS,
      owned_by: 'qwen-image-server',
      healthy: health.ok,
      // The model's: the most any backend offers. Each backend's own set is in backends[].capabilities.
      capabilities: engine.capabilities(),
      engine: { id: engine.id, kind: engine.kind, description: engine.description, health },
      ...(isDescribableEngine(engine) ? { backends: engine.describe().backends } : {}),
      queue: await deps.runStats(id),
    });
  }

  app.get('/v1/models', { preHandler: deps.authenticate }, async () => ({
    object: 'list',
    data: await Promise.all([...deps.engines].map(([id, engine]) => describeModel(id, engine))),
  }));

  app.get('/v1/models/*', { preHandler: deps.authenticate }, async (request) => {
    // The router has decoded the path once already; a model id may still arrive percent-encoded
    // (alibaba%2Fqwen-image-2-0), and a stray "%" is just not a model here.
    const raw = (request.params as { '*': string })['*'];
    let id = raw;
    try {
      id = decodeURIComponent(raw);
    } catch {
      // not percent-encoding: look it up as it is
    }
    const engine = deps.engines.get(id);
    if (!engine) throw new ApiError('model_not_found', `model "${id}" is not served here`, { param: 'model' });
    return describeModel(id, engine);
  });
}
