/**
 * Composition root: read config, build adapters, wire them, listen. The only file that imports
 * everything. `startServer` is exported so tests start the real server in-process over HTTP.
 *
 * Roles (ROLE, docs/deploy.md): `api` serves HTTP, submits, webhooks and retention and runs no job;
 * `worker` loads the engines and runs jobs, behind a health port only; `all` (default) is both. Each
 * dependency is built by one small function below (openStores, openBlobs, openQueueAndEvents,
 * buildEngines): switching one to its distributed adapter is a change there, nowhere else.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { readConfig, CREDITS_PER_USD, PUBLIC_MODEL_ID, type Config } from './config/config.ts';
import type { Engine } from './domain/types.ts';
import type { BlobStore, Watermarker } from './domain/ports.ts';
import type { JobEvents, JobQueue, JobStore } from './jobs/ports.ts';
import { createJobControl, type JobControl } from './jobs/job-control.ts';
import { createHealthReporter, type DependencyCheck, type HealthReporter } from './observability/health-report.ts';
import { buildHealthApp } from './http/health-app.ts';
import { createWorkerPoolEngines } from './engines/worker-pool/worker-pool-engine.ts';
import type { Metrics } from './observability/metrics.ts';
import { createGenerationValidator } from './contracts/validate-generation.ts';
import { buildOpenApiDocument } from './contracts/openapi.ts';
import { createImageFetcher, type ImageFetcher } from './images/fetch-image.ts';
import { openStores as openStateStores, type Stores } from './store/open-stores.ts';
import { connectRedis } from './jobs/redis/connect-redis.ts';
import type { BackendSlots } from './engines/router/backend-slots.ts';
import type { CircuitShare } from './engines/router/circuit-share.ts';
import type { RequestWindow } from './limits/request-window.ts';
import type { AdmitHolds } from './limits/admit-holds.ts';
import { usdToCredits } from './domain/money.ts';
import { loadKeyHashSecret } from './store/key-hash-secret.ts';
import { createKeyLimiter } from './limits/key-limiter.ts';
import { effectiveLimits } from './domain/key-limits.ts';
import { createBlobStore, type ManagedBlobStore } from './blobs/create-blob-store.ts';
import { createRunGeneration } from './pipeline/run-generation.ts';
import { createSubmitGeneration } from './pipeline/submit-generation.ts';
import { createSqliteJobQueue } from './jobs/sqlite/job-queue.ts';
import { createMemoryJobEvents } from './jobs/memory-events.ts';
import { createJobRunner } from './jobs/job-runner.ts';
import { createRetentionSweeper } from './jobs/retention.ts';
import { createWebhookDispatcher } from './jobs/webhooks/dispatcher.ts';
import { renderJob } from './contracts/job-view.ts';
import { encodePreviewDataUri } from './images/preview.ts';
import { createBuiltinEngine } from './engines/builtin/builtin-engine.ts';
import { BUNDLED_MODEL_WORDS, createPromptEnhancer, createVocabularyAdapter, DEFAULT_BUNDLED_VOCABULARY } from './prompt/index.ts';
import { readManifest } from './engines/builtin/manifest.ts';
import { createWatermarker } from './images/watermark/index.ts';
import { buildModelEngines } from './engines/registry.ts';
import { loadBackendsConfig, defaultBackendsConfig } from './config/backends.ts';
import { buildApp } from './http/app.ts';
import { createWorkGate } from './images/work-gate.ts';
import { prepareDataDir } from './store/data-dir.ts';
import { createMetrics } from './observability/metrics.ts';
import { startMetricsListener, type MetricsListener } from './observability/metrics-http.ts';
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
  /** The API's base URL; for ROLE=worker, its health listener's. */
  url: string;
  /** Base URL of the separate metrics listener (METRICS_PORT); undefined when there is none. */
  metricsUrl?: string;
  config: Config;
  /** Stops accepting, drains in-flight requests, closes engines and the database. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- the dependencies, one function each

/** Keys, ledger, jobs, idempotency, prompt cache, webhook outbox, limit counters, mark ledger. */
interface ServerStores extends Stores {
  checks: DependencyCheck[];
}

/** SQLite in DATA_DIR by default; Postgres with DATABASE_URL (store/open-stores.ts, docs/postgres.md). */
async function openStores(config: Config, logger: Logger): Promise<ServerStores> {
  const stores = await openStateStores({
    databaseUrl: config.database.url,
    sqlitePath: path.join(config.dataDir, 'server.sqlite'),
    hashKey: loadKeyHashSecret(config.keys.hashSecret, config.dataDir),
    onDatabaseError: (err) => logger.error({ err }, 'database connection error'),
  });
  return Object.assign(stores, { checks: [{ name: 'database', check: () => stores.ping() }] });
}

/** Generated images and uploaded references: DATA_DIR/images, or S3 with BLOB_STORE=s3://... (docs/blobs.md). */
async function openBlobs(config: Config): Promise<{ blobs: ManagedBlobStore; checks: DependencyCheck[] }> {
  const blobs = createBlobStore(config.blobs, { dataDir: config.dataDir });
  return { blobs, checks: [{ name: 'blobs', check: () => blobs.ping() }] };
}

interface QueueAndEvents {
  queue: JobQueue;
  events: JobEvents;
  /** Backend concurrency shared by every worker (Redis); absent: each router counts its own. */
  slots?: BackendSlots;
  /** Circuit breaker changes shared by every worker (Redis); absent: each router's breakers are its own. */
  circuits?: CircuitShare;
  /** The per-key per-minute window shared by every api process (Redis); absent: in memory. */
  requestWindow?: RequestWindow;
  /** The key limiter's admission lock and holds, shared by every api process (Redis); absent: in memory. */
  admitHolds?: AdmitHolds;
  checks: DependencyCheck[];
  close(): Promise<void>;
}

/** The job queue and live events: embedded (the SQLite file, in memory), or Redis with REDIS_URL (docs/redis.md). */
async function openQueueAndEvents(config: Config, stores: ServerStores, logger: Logger): Promise<QueueAndEvents> {
  if (config.redis.url) {
    const redis = await connectRedis({
      url: config.redis.url,
      prefix: config.redis.prefix,
      lockMs: config.redis.jobLockMs,
      stalledIntervalMs: config.redis.jobLockMs,
      leaseTtlMs: config.redis.jobLockMs,
      logger,
    });
    return { ...redis, checks: [{ name: 'queue', check: () => redis.ping() }], close: () => redis.close() };
  }
  if (!stores.sqliteDb) {
    throw new Error('DATABASE_URL needs REDIS_URL too: the embedded job queue lives in the SQLite database, which a Postgres store does not have');
  }
  const queue = createSqliteJobQueue(stores.sqliteDb);
  const probeModel = PUBLIC_MODEL_ID;
  return {
    queue,
    events: createMemoryJobEvents(),
    checks: [{ name: 'queue', check: async () => void (await queue.depth(probeModel)) }],
    close: async () => {},
  };
}

/**
 * Public model id → engine. A process that runs jobs builds the real ones (loaded later, once it
 * listens); ROLE=api gets the worker-pool view of the same routing file: capacities, no connections.
 */
async function buildEngines(config: Config, options: StartOptions, logger: Logger, shared: Pick<QueueAndEvents, 'slots' | 'circuits'>): Promise<Map<string, Engine>> {
  const backends = config.backendsConfigPath ? await loadBackendsConfig(config.backendsConfigPath) : defaultBackendsConfig();
  if (config.role === 'api') return createWorkerPoolEngines(backends);
  // No routing file: the builtin engine alone serves alibaba/qwen-image-2-0. The enhancer writes for a real
  // Qwen-Image; only the builtin engine, once the router has chosen it, maps the prompt onto its model's words.
  const adaptToBundledVocabulary = createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY, { modelWords: bundledModelWords(config.builtinModelDir) });
  const engines = buildModelEngines({
    config: backends,
    createBuiltin: ({ backendId }) =>
      createBuiltinEngine({ id: backendId, modelDir: config.builtinModelDir, threads: config.ortThreads, adaptPrompt: adaptToBundledVocabulary }),
    logger,
    env: process.env,
    slots: shared.slots,
    circuitShare: shared.circuits,
  });
  const models = new Map<string, Engine>();
  for (const [modelId, engine] of engines) models.set(modelId, options.wrapEngine ? options.wrapEngine(engine, modelId) : engine);
  return models;
}

/** The builtin model's tokenizer words (its manifest), which the synonym table is fitted to; the v1 list when the
 * manifest cannot be read (the engine reports that itself when it loads). */
function bundledModelWords(modelDir: string): readonly string[] {
  try {
    return readManifest(modelDir).text.vocab;
  } catch {
    return BUNDLED_MODEL_WORDS;
  }
}

/** `http://host:port` of a listening Fastify app, loopback when it listens on every address. */
function listenUrl(app: FastifyInstance, host: string, fallbackPort: number): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : fallbackPort;
  const listenHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
}

// ---------------------------------------------------------------- wiring

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'qwen-image-server', role: config.role } });
  const runsJobs = config.role !== 'api';
  const servesApi = config.role !== 'worker';
  prepareDataDir(config.dataDir, ['images']);
  // First: a certificate or key that does not work stops the start with its reason, before anything is opened.
  const credentials = await loadContentCredentials(config.c2pa, { name: 'qwen-image-server', version: VERSION });
  logger.info({ contentCredentials: credentials.signer !== null, trustAnchors: credentials.trustAnchorsPem !== null }, credentials.message);
  const stores = await openStores(config, logger);
  const { keys } = stores;
  if (servesApi) await stores.syncEnvKeys(config.apiKeys, config.keys.adminApiKeys);
  const { blobs, checks: blobChecks } = await openBlobs(config);
  const bus = await openQueueAndEvents(config, stores, logger);
  const { queue: jobQueue, events: jobEvents } = bus;
  const jobStore = stores.jobStore;
  const fetcher = createImageFetcher(config.image);
  const metrics = createMetrics();
  const models = await buildEngines(config, options, logger, bus);

  const watermarker: Watermarker = metrics.instrumentWatermarker(createWatermarker(config.watermark.key ? { key: config.watermark.key } : {}));
  const decodeLimits = { maxPixels: config.image.maxPixels, maxSidePx: config.image.maxSidePx };

  let publicUrl = config.publicUrl ?? '';
  const webhooks = servesApi
    ? createWebhookDispatcher({
        outbox: stores.webhookOutbox,
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
      })
    : null;
  const controlDeps = {
    store: jobStore,
    queue: jobQueue,
    events: jobEvents,
    blobs,
    engines: models,
    fallbackConcurrency: config.engineConcurrency,
    maxQueued: config.engineMaxQueue,
    logger,
    // A worker has no dispatcher: the api's finds the deliveries a worker wrote within its longest sleep.
    onStateChange: webhooks ? () => webhooks.kick() : undefined,
    observer: metrics.jobs,
  };
  const runner = runsJobs
    ? createJobRunner({
        ...controlDeps,
        runGeneration: createRunGeneration({
          engines: models,
          blobs,
          enhancer: metrics.instrumentEnhancer(createPromptEnhancer({
            llm: config.enhancer.url && config.enhancer.model
              ? { url: config.enhancer.url, model: config.enhancer.model, apiKey: config.enhancer.apiKey, timeoutMs: config.enhancer.timeoutMs }
              : undefined,
            cache: stores.promptCache,
            logger,
          })),
          watermarker,
          watermarkIssuerId: config.watermark.issuerId,
          contentCredentials: credentials.signer,
          pricesUsd: config.pricesUsd,
          creditsPerUsd: CREDITS_PER_USD,
          publicUrl: () => publicUrl,
          software: SOFTWARE,
        }),
        runTimeoutMs: config.requestTimeoutMs,
        maxAttempts: config.jobs.maxAttempts,
        encodePreview: (image) => encodePreviewDataUri(image),
        // Jobs come from other processes: a worker's api, or every api of a shared queue.
        pollIntervalMs: config.role === 'worker' || jobQueue.sharedAcrossProcesses ? config.worker.pollMs : undefined,
        othersWrite: config.role === 'worker' || jobQueue.sharedAcrossProcesses,
        queueSweepMs: jobQueue.sharedAcrossProcesses ? config.worker.queueSweepMs : undefined,
      })
    : null;
  const control = runner ?? createJobControl(controlDeps);
  // The routers as built (a test's wrapEngine may hide describe()), for in-flight and circuit gauges.
  metrics.watch({ engines: models, runStats: (model) => control.stats(model) });

  let started = false;
  const health = createHealthReporter({
    role: config.role,
    dependencies: [...stores.checks, ...bus.checks, ...blobChecks],
    engines: runsJobs ? models : undefined,
    isStarted: () => started,
    timeoutMs: config.healthCheckTimeoutMs,
  });
  const api = servesApi ? await buildApiApp({ config, options, logger, stores, blobs, fetcher, metrics, watermarker, credentials, decodeLimits, models, control, health, publicUrl: () => publicUrl, jobs: { store: jobStore, queue: jobQueue, events: jobEvents }, requestWindow: bus.requestWindow, admitHolds: bus.admitHolds }) : null;
  const retention = servesApi
    ? createRetentionSweeper({
        store: jobStore,
        blobs,
        retentionMs: config.jobs.retentionMs,
        // Often enough that an expired image goes within a tenth of the retention, never busier than once a second.
        intervalMs: Math.min(10 * 60_000, Math.max(1000, Math.round(config.jobs.retentionMs / 10))),
        logger,
      })
    : null;

  const app = api ?? buildHealthApp({ logger, role: config.role, health, metrics: { metrics, token: config.metrics.token } });
  const port = servesApi ? config.port : config.worker.healthPort;
  await app.listen({ port, host: config.host });
  const url = listenUrl(app, config.host, port);
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
  if (runner) {
    await Promise.all([...models.values()].map((engine) => engine.load()));
    await runner.recover();
  }
  webhooks?.start();
  retention?.start();
  started = true;
  runner?.start();
  logger.info({ url, role: config.role, models: [...models.keys()], dataDir: config.dataDir }, 'server ready');

  let closing: Promise<void> | null = null;
  return {
    url,
    metricsUrl: metricsListener?.url,
    config,
    close() {
      closing ??= (async () => {
        // HTTP first (synchronous callers wait for their jobs, which keep running), then the jobs
        // still running; queued jobs stay in the queue for the next start (or another worker).
        await app.close();
        await control.close();
        // Scrapable while the drain runs.
        await metricsListener?.close();
        await retention?.close();
        await webhooks?.close();
        if (runner) await Promise.all([...models.values()].map((engine) => engine.close().catch((err: Error) => logger.warn({ err }, 'engine close failed'))));
        await fetcher.close();
        await blobs.close();
        await bus.close();
        await stores.close();
      })();
      return closing;
    },
  };
}

interface ApiAppParts {
  config: Config;
  options: StartOptions;
  logger: Logger;
  stores: ServerStores;
  blobs: BlobStore;
  fetcher: ImageFetcher;
  metrics: Metrics;
  watermarker: Watermarker;
  credentials: Awaited<ReturnType<typeof loadContentCredentials>>;
  decodeLimits: { maxPixels: number; maxSidePx: number };
  models: Map<string, Engine>;
  control: Pick<JobControl, 'admit' | 'pump' | 'stop' | 'stats'>;
  health: HealthReporter;
  publicUrl: () => string;
  jobs: { store: JobStore; queue: JobQueue; events: JobEvents };
  requestWindow?: RequestWindow;
  admitHolds?: AdmitHolds;
}

/** The public API of an `api` or `all` process: submit, jobs, files, keys, usage, watermark, verify. */
async function buildApiApp(parts: ApiAppParts): Promise<FastifyInstance> {
  const { config, stores, control, fetcher, watermarker } = parts;
  const { keys } = stores;
  // One gate for every decode a request asks for: references of edits and uploads to detect.
  const imageGate = createWorkGate({ concurrency: config.image.decodeConcurrency, maxQueue: config.image.decodeMaxQueue, what: 'decoding images' });
  const limiter = createKeyLimiter({
    usage: stores.limitUsage,
    limitsOf: async (keyId) => {
      const record = await keys.get(keyId);
      return record ? effectiveLimits(record.limits, config.keys.defaultLimits) : config.keys.defaultLimits;
    },
    priceCredits: (model) => usdToCredits(config.pricesUsd[model] ?? 0),
    window: parts.requestWindow,
    holds: parts.admitHolds,
    // About one run of the model: when a job of the key is likely to have ended (5 s before any has).
    jobRetryAfterS: async (model) => Math.max(1, Math.ceil(((await control.stats(model)).meanRunMs || 5000) / 1000)),
    now: parts.options.limitsClock,
  });
  const submitGeneration = createSubmitGeneration({
    ...parts.jobs,
    runner: control,
    keys,
    blobs: parts.blobs,
    fetcher,
    decodeLimits: parts.decodeLimits,
    imageGate,
    models: new Set(parts.models.keys()),
    pricesUsd: config.pricesUsd,
    allowPrivateWebhooks: config.webhooks.allowPrivate,
    limiter,
  });
  // Detection and verification look at the image as given, up to the pixel cap: no downscale before it.
  const detectLimits = { maxPixels: config.image.maxPixels, maxSidePx: 8192 };
  return buildApp({
    logger: parts.logger,
    maxBodyBytes: config.maxBodyBytes,
    keys,
    usage: stores.usage,
    blobs: parts.blobs,
    validateGeneration: createGenerationValidator({ maxImagesPerRequest: config.maxImagesPerRequest }),
    submitGeneration,
    jobs: { ...parts.jobs, runner: control, publicUrl: parts.publicUrl },
    requestTimeoutMs: config.requestTimeoutMs,
    http: config.http,
    engines: parts.models,
    runStats: (model) => control.stats(model),
    openapi: buildOpenApiDocument(config.publicUrl ?? '/', VERSION),
    role: config.role,
    health: parts.health,
    allowPrivateWebhooks: config.webhooks.allowPrivate,
    limiter,
    defaultLimits: config.keys.defaultLimits,
    maxImageBytes: config.image.maxBytes,
    playground: { pricesUsd: config.pricesUsd, creditsPerUsd: CREDITS_PER_USD, maxImagesPerRequest: config.maxImagesPerRequest },
    watermark: { watermarker, fetcher, decodeLimits: detectLimits, imageGate, maxUploadBytes: config.image.maxBytes },
    metrics: { metrics: parts.metrics, token: config.metrics.token },
    verify: {
      verifyImage: createVerifyImage({
        readManifest: createManifestReader({ trustAnchorsPem: parts.credentials.trustAnchorsPem }),
        watermarker,
        ledger: stores.markLedger,
        issuerId: config.watermark.issuerId,
      }),
      fetcher,
      decodeLimits: detectLimits,
      imageGate,
      maxUploadBytes: config.image.maxBytes,
    },
  });
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
      (err: unknown) => {
        // say why: a supervisor (or a test) sees only the exit status otherwise
        process.stderr.write(`shutdown failed: ${(err as Error)?.stack ?? String(err)}
`);
        process.exit(1);
      },
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
