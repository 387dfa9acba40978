/**
 * Composition root: read config, build adapters, wire them, listen. The only file that imports
 * everything. `startServer` is exported so tests start the real server in-process over HTTP.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { readConfig, CREDITS_PER_USD, type Config } from './config/config.ts';
import type { Engine } from './domain/types.ts';
import type { Watermarker } from './domain/ports.ts';
import { createGenerationValidator } from './contracts/validate-generation.ts';
import { buildOpenApiDocument } from './contracts/openapi.ts';
import { createImageFetcher } from './images/fetch-image.ts';
import { openDatabase } from './store/sqlite/database.ts';
import { createSqliteUsageStore } from './store/sqlite/usage-store.ts';
import { createSqliteKeyStore } from './store/sqlite/key-store.ts';
import { loadKeyHashSecret } from './store/key-hash-secret.ts';
import { createSqliteLimitUsage } from './store/sqlite/limit-usage.ts';
import { createKeyLimiter } from './limits/key-limiter.ts';
import { effectiveLimits } from './domain/key-limits.ts';
import { createSqlitePromptCache } from './store/sqlite/prompt-cache.ts';
import { createBlobStore } from './blobs/create-blob-store.ts';
import { createRunGeneration } from './pipeline/run-generation.ts';
import { createSubmitGeneration } from './pipeline/submit-generation.ts';
import { createSqliteJobStore } from './jobs/sqlite/job-store.ts';
import { createSqliteJobQueue } from './jobs/sqlite/job-queue.ts';
import { createSqliteWebhookOutbox } from './jobs/sqlite/webhook-outbox.ts';
import { createMemoryJobEvents } from './jobs/memory-events.ts';
import { createJobRunner } from './jobs/job-runner.ts';
import { createRetentionSweeper } from './jobs/retention.ts';
import { createWebhookDispatcher } from './jobs/webhooks/dispatcher.ts';
import { renderJob } from './contracts/job-view.ts';
import { encodePreviewDataUri } from './images/preview.ts';
import { createBuiltinEngine } from './engines/builtin/builtin-engine.ts';
import { createPromptEnhancer, createVocabularyAdapter, DEFAULT_BUNDLED_VOCABULARY } from './prompt/index.ts';
import { createWatermarker } from './images/watermark/index.ts';
import { buildModelEngines } from './engines/registry.ts';
import { loadBackendsConfig, defaultBackendsConfig } from './config/backends.ts';
import { buildApp } from './http/app.ts';
import { createWorkGate } from './images/work-gate.ts';
import { prepareDataDir } from './store/data-dir.ts';
import { createMetrics } from './observability/metrics.ts';
import { startMetricsListener, type MetricsListener } from './observability/metrics-http.ts';
import { createSqliteMarkLedger } from './store/sqlite/mark-ledger.ts';
import { createManifestReader, createVerifyImage, loadContentCredentials } from './provenance/index.ts';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const SOFTWARE = `qwen-image-server ${VERSION}`;

export interface StartOptions {
  /** Tests: replace a model's engine (e.g. wrap it to be slow) before the job runner gets it. */
  wrapEngine?: (engine: Engine, modelId: string) => Engine;
  logger?: Logger;
  /** Tests: the clock of the per-key limits (the per-minute window, the UTC day and month of the budgets). */
  limitsClock?: () => number;
}

export interface RunningServer {
  url: string;
  /** Base URL of the separate metrics listener (METRICS_PORT); undefined when there is none. */
  metricsUrl?: string;
  config: Config;
  /** Stops accepting, drains in-flight requests, closes engines and the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'qwen-image-server' } });
  prepareDataDir(config.dataDir, ['images']);
  // First: a certificate or key that does not work stops the start with its reason, before anything is opened.
  const credentials = await loadContentCredentials(config.c2pa, { name: 'qwen-image-server', version: VERSION });
  logger.info({ contentCredentials: credentials.signer !== null, trustAnchors: credentials.trustAnchorsPem !== null }, credentials.message);
  const db = openDatabase(path.join(config.dataDir, 'server.sqlite'));
  const keys = createSqliteKeyStore(db, { hashKey: loadKeyHashSecret(config.keys.hashSecret, config.dataDir) });
  keys.syncEnvKeys(config.apiKeys, config.keys.adminApiKeys);
  const usage = createSqliteUsageStore(db);
  const blobs = createBlobStore(config.blobs, { dataDir: config.dataDir });
  const fetcher = createImageFetcher(config.image);
  const metrics = createMetrics();

  // No routing file: the builtin engine alone serves alibaba/qwen-image-2-0. The enhancer writes for a real
  // Qwen-Image; only the builtin engine, once the router has chosen it, maps the prompt onto its model's words.
  const adaptToBundledVocabulary = createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY);
  const backends = config.backendsConfigPath ? await loadBackendsConfig(config.backendsConfigPath) : defaultBackendsConfig();
  const engines = buildModelEngines({
    config: backends,
    createBuiltin: ({ backendId }) =>
      createBuiltinEngine({ id: backendId, modelDir: config.builtinModelDir, threads: config.ortThreads, adaptPrompt: adaptToBundledVocabulary }),
    logger,
    env: process.env,
  });

  const models = new Map<string, Engine>();
  for (const [modelId, engine] of engines) {
    models.set(modelId, options.wrapEngine ? options.wrapEngine(engine, modelId) : engine);
  }

  const enhancer = metrics.instrumentEnhancer(createPromptEnhancer({
    llm: config.enhancer.url && config.enhancer.model
      ? { url: config.enhancer.url, model: config.enhancer.model, apiKey: config.enhancer.apiKey, timeoutMs: config.enhancer.timeoutMs }
      : undefined,
    cache: createSqlitePromptCache(db),
    logger,
  }));
  const watermarker: Watermarker = metrics.instrumentWatermarker(createWatermarker(config.watermark.key ? { key: config.watermark.key } : {}));
  const decodeLimits = { maxPixels: config.image.maxPixels, maxSidePx: config.image.maxSidePx };

  let publicUrl = config.publicUrl ?? '';
  const jobStore = createSqliteJobStore(db);
  const jobQueue = createSqliteJobQueue(db);
  const jobEvents = createMemoryJobEvents();
  const webhooks = createWebhookDispatcher({
    outbox: createSqliteWebhookOutbox(db),
    secretFor: (keyId) => keys.ensureWebhookSecret(keyId),
    renderBody: async (delivery) => {
      const job = await jobStore.get(delivery.jobId);
      if (!job) return null;
      // Standard Webhooks payload shape: type, timestamp (of the event), data.
      return JSON.stringify({ type: delivery.eventType, timestamp: new Date(delivery.createdAtMs).toISOString(), data: renderJob(job, publicUrl, null) });
    },
    allowPrivate: config.webhooks.allowPrivate,
    timeoutMs: config.webhooks.timeoutMs,
    retry: { baseDelayMs: config.webhooks.retryBaseMs, maxAttempts: config.webhooks.maxAttempts },
    logger,
  });
  const runner = createJobRunner({
    store: jobStore,
    queue: jobQueue,
    events: jobEvents,
    blobs,
    engines: models,
    runGeneration: createRunGeneration({
      engines: models,
      blobs,
      enhancer,
      watermarker,
      watermarkIssuerId: config.watermark.issuerId,
      contentCredentials: credentials.signer,
      pricesUsd: config.pricesUsd,
      creditsPerUsd: CREDITS_PER_USD,
      publicUrl: () => publicUrl,
      software: SOFTWARE,
    }),
    fallbackConcurrency: config.engineConcurrency,
    maxQueued: config.engineMaxQueue,
    runTimeoutMs: config.requestTimeoutMs,
    maxAttempts: config.jobs.maxAttempts,
    logger,
    encodePreview: (image) => encodePreviewDataUri(image),
    onStateChange: () => webhooks.kick(),
    observer: metrics.jobs,
  });
  // The routers as built (a test's wrapEngine may hide describe()), for in-flight and circuit gauges.
  metrics.watch({ engines, runStats: (model) => runner.stats(model) });
  const retention = createRetentionSweeper({
    store: jobStore,
    blobs,
    retentionMs: config.jobs.retentionMs,
    // Often enough that an expired image goes within a tenth of the retention, never busier than once a second.
    intervalMs: Math.min(10 * 60_000, Math.max(1000, Math.round(config.jobs.retentionMs / 10))),
    logger,
  });
  // One gate for every decode a request asks for: references of edits and uploads to detect.
  const imageGate = createWorkGate({ concurrency: config.image.decodeConcurrency, maxQueue: config.image.decodeMaxQueue, what: 'decoding images' });
  const limiter = createKeyLimiter({
    usage: createSqliteLimitUsage(db),
    limitsOf: async (keyId) => {
      const record = await keys.get(keyId);
      return record ? effectiveLimits(record.limits, config.keys.defaultLimits) : config.keys.defaultLimits;
    },
    priceCredits: (model) => (config.pricesUsd[model] ?? 0) * CREDITS_PER_USD,
    // About one run of the model: when a job of the key is likely to have ended (5 s before any has).
    jobRetryAfterS: async (model) => Math.max(1, Math.ceil(((await runner.stats(model)).meanRunMs || 5000) / 1000)),
    now: options.limitsClock,
  });
  const submitGeneration = createSubmitGeneration({
    store: jobStore,
    queue: jobQueue,
    runner,
    keys,
    blobs,
    fetcher,
    decodeLimits,
    imageGate,
    models: new Set(models.keys()),
    pricesUsd: config.pricesUsd,
    allowPrivateWebhooks: config.webhooks.allowPrivate,
    limiter,
  });
  const jobsHttp = { store: jobStore, queue: jobQueue, events: jobEvents, runner, publicUrl: () => publicUrl };

  let ready = false;
  const app = await buildApp({
    logger,
    maxBodyBytes: config.maxBodyBytes,
    keys,
    usage,
    blobs,
    validateGeneration: createGenerationValidator({ maxImagesPerRequest: config.maxImagesPerRequest }),
    submitGeneration,
    jobs: jobsHttp,
    requestTimeoutMs: config.requestTimeoutMs,
    http: config.http,
    engines: models,
    runStats: (model) => runner.stats(model),
    openapi: buildOpenApiDocument(config.publicUrl ?? '/', VERSION),
    isReady: () => ready,
    allowPrivateWebhooks: config.webhooks.allowPrivate,
    limiter,
    defaultLimits: config.keys.defaultLimits,
    maxImageBytes: config.image.maxBytes,
    playground: { pricesUsd: config.pricesUsd, creditsPerUsd: CREDITS_PER_USD, maxImagesPerRequest: config.maxImagesPerRequest },
    watermark: {
      watermarker,
      fetcher,
      // Detection looks at the image as given, up to the pixel cap: no downscale before it.
      decodeLimits: { maxPixels: config.image.maxPixels, maxSidePx: 8192 },
      imageGate,
      maxUploadBytes: config.image.maxBytes,
    },
    metrics: { metrics, token: config.metrics.token },
    verify: {
      verifyImage: createVerifyImage({
        readManifest: createManifestReader({ trustAnchorsPem: credentials.trustAnchorsPem }),
        watermarker,
        ledger: createSqliteMarkLedger(db),
        issuerId: config.watermark.issuerId,
      }),
      fetcher,
      decodeLimits: { maxPixels: config.image.maxPixels, maxSidePx: 8192 },
      imageGate,
      maxUploadBytes: config.image.maxBytes,
    },
  });

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const listenHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  publicUrl = config.publicUrl ?? url;
  let metricsListener: MetricsListener | undefined;
  if (config.metrics.port !== undefined) {
    metricsListener = await startMetricsListener({
      metrics,
      token: config.metrics.token,
      host: config.metrics.host,
      port: config.metrics.port,
      onError: (err) => logger.error({ err }, 'could not collect the metrics'),
    });
  }

  // Engines load after the socket is open so /healthz can say "loading" meanwhile. Jobs accepted
  // before a crash run once they have: the runner starts after recovery.
  await Promise.all([...models.values()].map((engine) => engine.load()));
  await runner.recover();
  webhooks.start();
  retention.start();
  ready = true;
  void runner.pump();
  logger.info({ url, models: [...models.keys()], dataDir: config.dataDir }, 'server ready');

  let closing: Promise<void> | null = null;
  return {
    url,
    metricsUrl: metricsListener?.url,
    config,
    close() {
      closing ??= (async () => {
        // HTTP first (synchronous callers wait for their jobs, which keep running), then the jobs
        // still running; queued jobs stay in the database for the next start.
        await app.close();
        await runner.close();
        // Scrapable while the drain runs.
        await metricsListener?.close();
        await retention.close();
        await webhooks.close();
        await Promise.all([...models.values()].map((engine) => engine.close().catch((err: Error) => logger.warn({ err }, 'engine close failed'))));
        await fetcher.close();
        await blobs.close();
        db.close();
      })();
      return closing;
    },
  };
}

async function run(): Promise<void> {
  const config = readConfig(process.env);
  if (config.apiKeys.length === 0 && config.keys.adminApiKeys.length === 0) {
    process.stderr.write('note: API_KEYS is empty; create a key with `npm run cli -- keys create` or set API_KEYS=...\n');
  }
  // The handlers go in before anything starts: a SIGTERM that arrives while the engines load (or just
  // after "server ready" is logged) must drain, not hit the default action that kills the process.
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let stopping: string | null = null;
  const drain = () => {
    process.stderr.write(`${stopping}: draining in-flight requests (up to ${config.shutdownGraceMs} ms)\n`);
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs);
    force.unref();
    server!.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = signal;
    if (server) drain(); // otherwise drained as soon as startServer returns
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  server = await startServer(config);
  if (stopping) drain();
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  run().catch((err: unknown) => {
    process.stderr.write(`failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
