/**
 * The listener of a ROLE=worker process: GET /healthz, GET /readyz and (with METRICS_TOKEN) GET
 * /metrics, nothing else. A worker serves no public API; every other path answers the API's 404.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Role } from '../config/config.ts';
import type { HealthReporter } from '../observability/health-report.ts';
import { registerMetricsHttp, type MetricsHttpOptions } from '../observability/metrics-http.ts';
import { registerErrorHandling } from './plugins/errors.ts';
import { registerHealthRoutes } from './routes/health.ts';

export interface HealthAppDeps {
  logger: Logger;
  role: Role;
  health: HealthReporter;
  metrics?: MetricsHttpOptions;
}

/** Probes send no body; anything larger than this is not a probe. */
const MAX_BODY_BYTES = 1024;

export function buildHealthApp(deps: HealthAppDeps): FastifyInstance {
  let draining = false;
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: MAX_BODY_BYTES,
    // Probes every few seconds would fill the log at info level.
    disableRequestLogging: true,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.addHook('preClose', async () => {
    draining = true;
  });
  registerErrorHandling(app, MAX_BODY_BYTES);
  if (deps.metrics) registerMetricsHttp(app, deps.metrics);
  registerHealthRoutes(app, { role: deps.role, health: deps.health, isDraining: () => draining });
  return app;
}
