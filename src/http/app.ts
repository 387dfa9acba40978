/**
 * buildApp(deps) returns the Fastify app without listening: the tests and main.ts both use it.
 * Bodies are parsed as JSON by Fastify and validated by our own Ajv instance (no coercion), so
 * Fastify's schema compiler is not used for request bodies.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { KeyStore, UsageStore, BlobStore } from '../domain/ports.ts';
import type { ValidateFn } from '../contracts/validate-generation.ts';
import type { SubmitGeneration } from '../pipeline/submit-generation.ts';
import type { Engine } from '../domain/types.ts';
import type { ModelRunStats } from '../jobs/job-runner.ts';
import type { Config, Role } from '../config/config.ts';
import type { HealthReporter } from '../observability/health-report.ts';
import { registerErrorHandling, sendApiError } from './plugins/errors.ts';
import { ApiError } from '../domain/errors.ts';
import { createAuthenticate, createRequireAdmin } from './plugins/auth.ts';
import { registerGenerationRoutes } from './routes/generations.ts';
import { registerEditRoutes } from './routes/edits.ts';
import { registerJobRoutes, type JobsHttpDeps } from './routes/jobs.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { registerModelRoutes } from './routes/models.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerDocsRoutes } from './routes/docs.ts';
import { registerWatermarkRoutes, type WatermarkRouteDeps } from './routes/watermark.ts';
import { registerAdminRoutes } from './routes/admin-keys.ts';
import type { KeyLimiter } from '../limits/ports.ts';
import type { KeyLimits } from '../domain/key-limits.ts';
import { registerMetricsHttp, type MetricsHttpOptions } from '../observability/metrics-http.ts';
import { registerVerifyRoutes, type VerifyRouteDeps } from './routes/verify.ts';
import { registerPlaygroundRoutes, type PlaygroundRouteDeps } from './routes/playground.ts';

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
  http: Config['http'];
  engines: Map<string, Engine>;
  runStats: (model: string) => Promise<ModelRunStats>;
  openapi: Record<string, unknown>;
  /** GET /healthz and /readyz: this process's role and the state of its dependencies. */
  role: Role;
  health: HealthReporter;
  /** Webhook URLs may point at private addresses (WEBHOOK_ALLOW_PRIVATE_URLS). */
  allowPrivateWebhooks: boolean;
  watermark: Omit<WatermarkRouteDeps, 'authenticate'> | null;
  /** Per-key limits (GET /v1/usage shows them) and the defaults of keys that set none. */
  limiter: Pick<KeyLimiter, 'status'>;
  defaultLimits: KeyLimits;
  /** Request counts and latency for every route, and GET /metrics when a token is set. */
  metrics?: MetricsHttpOptions;
  /** Largest uploaded reference image (POST /v1/images/edits). */
  maxImageBytes: number;
  /** POST /v1/images/verify (C2PA manifest + watermark + trace); null: not served. */
  verify: Omit<VerifyRouteDeps, 'authenticate'> | null;
  /** GET /playground: prices, credits per USD and the largest n the page shows. */
  playground: PlaygroundRouteDeps;
}

/** A caller-supplied x-request-id is kept when it is short and plain; otherwise we make one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  let draining = false;
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: deps.maxBodyBytes,
    // A client gets HEADERS_TIMEOUT_MS for its headers and BODY_TIMEOUT_MS for the whole request
    // (checked every TIMEOUT_CHECK_INTERVAL_MS), then the socket is closed: a trickled body cannot
    // hold a descriptor forever. Neither limit covers the answer, which REQUEST_TIMEOUT_MS bounds.
    requestTimeout: deps.http.bodyTimeoutMs,
    keepAliveTimeout: deps.http.keepAliveTimeoutMs,
    http: { headersTimeout: deps.http.headersTimeoutMs, connectionsCheckingInterval: deps.http.timeoutCheckIntervalMs },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req_${crypto.randomUUID()}`;
    },
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    return503OnClosing: true,
    // The router's own refusals (a path that is not valid percent-encoding, a path parameter over its
    // length limit) get the API's error body like every other 4xx.
    frameworkErrors: (err, _request, reply) => {
      const tooLong = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH';
      return sendApiError(
        reply,
        tooLong ? new ApiError('uri_too_long', 'a path segment of the URL is longer than allowed') : new ApiError('invalid_value', 'the URL path is not valid percent-encoding'),
      );
    },
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
  if (deps.metrics) registerMetricsHttp(app, deps.metrics);

  // Every /v1/ route needs a key, and it is checked in onRequest, before a body is read: an
  // unauthenticated client cannot make the server buffer 32 MB. A refused request with a body still
  // coming gets `Connection: close`, so its socket does not stay to be drained.
  const verifyKey = createAuthenticate(deps.keys);
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    try {
      await verifyKey(request);
    } catch (err) {
      if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) reply.header('connection', 'close');
      throw err;
    }
  });
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    if (!request.apiKey) await verifyKey(request);
  };
  const generationDeps = {
    authenticate,
    validateGeneration: deps.validateGeneration,
    submitGeneration: deps.submitGeneration,
    jobs: deps.jobs,
    requestTimeoutMs: deps.requestTimeoutMs,
  };
  registerGenerationRoutes(app, generationDeps);
  await registerEditRoutes(app, { ...generationDeps, maxImageBytes: deps.maxImageBytes });
  registerJobRoutes(app, { authenticate, ...deps.jobs });
  registerWebhookRoutes(app, { authenticate, keys: deps.keys, allowPrivate: deps.allowPrivateWebhooks });
  registerModelRoutes(app, { authenticate, engines: deps.engines, runStats: deps.runStats, startedAtS: Math.floor(Date.now() / 1000) });
  registerUsageRoutes(app, { authenticate, usage: deps.usage, limiter: deps.limiter });
  registerAdminRoutes(app, { requireAdmin: createRequireAdmin(authenticate), keys: deps.keys, usage: deps.usage, limiter: deps.limiter, defaultLimits: deps.defaultLimits });
  registerFileRoutes(app, { blobs: deps.blobs });
  registerHealthRoutes(app, { role: deps.role, health: deps.health, isDraining: () => draining });
  registerDocsRoutes(app, { openapi: deps.openapi });
  registerPlaygroundRoutes(app, deps.playground);
  if (deps.watermark) await registerWatermarkRoutes(app, { authenticate, ...deps.watermark });
  if (deps.verify) await registerVerifyRoutes(app, { authenticate, ...deps.verify });
  return app;
}
