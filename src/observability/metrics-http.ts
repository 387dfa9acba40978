/**
 * Serving the metrics, and counting the HTTP traffic they report.
 *
 * Who may scrape (README, settings table):
 * - METRICS_TOKEN set: GET /metrics on the API port answers to `Authorization: Bearer <token>` only
 *   (an API key is not enough: the numbers cover every tenant and name the backends);
 * - METRICS_PORT set: a second listener (METRICS_HOST, default loopback) serves GET /metrics with no
 *   authentication, unless METRICS_TOKEN is set, which then holds there too;
 * - neither: no metrics are served (the API port answers 404), so nothing is exposed by default.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsHttpOptions {
  metrics: Metrics;
  /** Bearer token /metrics requires; undefined: the API port does not serve /metrics. */
  token: string | undefined;
}

const UNAUTHORIZED = 'metrics need "Authorization: Bearer <METRICS_TOKEN>" (an API key is not accepted here)';
const BEARER = /^bearer[ \t]+([^\s]+)[ \t]*$/i;
const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** Compares digests, so the check takes the same time whatever the guess and whatever its length. */
function createTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    const m = authorization === undefined ? null : BEARER.exec(authorization);
    return m !== null && crypto.timingSafeEqual(digest(m[1]!), expected);
  };
}

/**
 * Counts every response by route pattern and status, and (with a token) serves GET /metrics.
 * Call before the routes are registered, so the hook sees all of them.
 */
export function registerMetricsHttp(app: FastifyInstance, options: MetricsHttpOptions): void {
  const { metrics } = options;
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
  });
  if (options.token === undefined) return;
  const isAllowed = createTokenCheck(options.token);
  app.get('/metrics', async (request: FastifyRequest, reply) => {
    if (!isAllowed(request.headers.authorization)) {
      throw new ApiError('invalid_api_key', UNAUTHORIZED, { param: 'authorization' });
    }
    return reply.type(metrics.contentType).send(await metrics.render());
  });
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** The separate metrics port: GET /metrics and nothing else, on its own socket. */
export async function startMetricsListener(
  options: MetricsHttpOptions & { host: string; port: number; onError?: (err: unknown) => void },
): Promise<MetricsListener> {
  const { metrics } = options;
  const isAllowed = options.token === undefined ? () => true : createTokenCheck(options.token);
  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    const answer = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const fail = (err: ApiError) => answer(err.status, 'application/json', JSON.stringify(err.toBody()));
    if (pathname !== '/metrics') return fail(new ApiError('not_found', `no route for ${req.method} ${pathname}; this port serves GET /metrics`));
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(new ApiError('method_not_allowed', 'use GET /metrics'));
    if (!isAllowed(req.headers.authorization)) return fail(new ApiError('invalid_api_key', UNAUTHORIZED, { param: 'authorization' }));
    metrics.render().then(
      (text) => answer(200, metrics.contentType, text),
      (err: unknown) => {
        options.onError?.(err);
        fail(new ApiError('internal_error', 'could not collect the metrics'));
      },
    );
  });
  // A scraper keeps its connection open between scrapes; close must not wait for it.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
