/**
 * buildApp(deps) returns the Fastify app without listening: the tests and main.ts both use it.
 * Bodies are parsed as JSON by Fastify and validated by our own Ajv instance (no coercion), so
 * Fastify's schema compiler is not used for request bodies.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { KeyStore, UsageStore, BlobStore } from '../domain/ports.ts';
import type { ValidateFn } from '../contracts/validate-generation.ts';
import type { SubmitGeneration } from '../pipeline/submit-generation.ts';
import type { Engine } from '../domain/types.ts';
import type { ModelRunStats } from '../jobs/job-runner.ts';
import { registerErrorHandling } from './plugins/errors.ts';
import { createAuthenticate } from './plugins/auth.ts';
import { registerGenerationRoutes } from './routes/generations.ts';
import { registerJobRoutes, type JobsHttpDeps } from './routes/jobs.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { registerModelRoutes } from './routes/models.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerDocsRoutes } from './routes/docs.ts';
import { registerWatermarkRoutes, type WatermarkRouteDeps } from './routes/watermark.ts';
import { registerVerifyRoutes, type VerifyRouteDeps } from './routes/verify.ts';

export interface AppDeps {
  logger: Logger;
  maxBodyBytes: number;
  keys: KeyStore;
  usage: UsageStore;
  blobs: BlobStore;
  validateGeneration: ValidateFn;
  submitGeneration: SubmitGeneration;
  jobs: JobsHttpDeps;
  /** Limit of a synchronous generation call. */
  requestTimeoutMs: number;
  engines: Map<string, Engine>;
  runStats: (model: string) => Promise<ModelRunStats>;
  openapi: Record<string, unknown>;
  isReady: () => boolean;
  /** Webhook URLs may point at private addresses (WEBHOOK_ALLOW_PRIVATE_URLS). */
  allowPrivateWebhooks: boolean;
  watermark: Omit<WatermarkRouteDeps, 'authenticate'> | null;
  /** POST /v1/images/verify (C2PA manifest + watermark + trace); null: not served. */
  verify: Omit<VerifyRouteDeps, 'authenticate'> | null;
}

/** A caller-supplied x-request-id is kept when it is short and plain; otherwise we make one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  let draining = false;
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: deps.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req_${crypto.randomUUID()}`;
    },
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    return503OnClosing: true,
    // Idle keep-alive sockets are closed at once on shutdown; in-flight requests finish first.
    forceCloseConnections: 'idle',
  });
  // JSON only: without this Fastify would parse text/plain bodies into strings.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('apiKey', null);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // preClose runs before the listener stops: from then on every response tells the client to drop
  // its keep-alive socket, so a drain waits only for requests in flight, not for idle clients.
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close');
  });
  registerErrorHandling(app, deps.maxBodyBytes);

  const authenticate = createAuthenticate(deps.keys);
  registerGenerationRoutes(app, {
    authenticate,
    validateGeneration: deps.validateGeneration,
    submitGeneration: deps.submitGeneration,
    jobs: deps.jobs,
    requestTimeoutMs: deps.requestTimeoutMs,
  });
  registerJobRoutes(app, { authenticate, ...deps.jobs });
  registerWebhookRoutes(app, { authenticate, keys: deps.keys, allowPrivate: deps.allowPrivateWebhooks });
  registerModelRoutes(app, { authenticate, engines: deps.engines, runStats: deps.runStats, startedAtS: Math.floor(Date.now() / 1000) });
  registerUsageRoutes(app, { authenticate, usage: deps.usage });
  registerFileRoutes(app, { blobs: deps.blobs });
  registerHealthRoutes(app, { isReady: deps.isReady, isDraining: () => draining });
  registerDocsRoutes(app, { openapi: deps.openapi });
  if (deps.watermark) await registerWatermarkRoutes(app, { authenticate, ...deps.watermark });
  if (deps.verify) await registerVerifyRoutes(app, { authenticate, ...deps.verify });
  return app;
}
