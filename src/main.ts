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
import { createSqlitePromptCache } from './store/sqlite/prompt-cache.ts';
import { createFsBlobStore } from './blobs/fs/fs-blob-store.ts';
import { BoundedQueue } from './pipeline/bounded-queue.ts';
import { createGenerateImage, type ModelSlot } from './pipeline/generate-image.ts';
import { createBuiltinEngine } from './engines/builtin/builtin-engine.ts';
import { createPromptEnhancer, DEFAULT_BUNDLED_VOCABULARY } from './prompt/index.ts';
import { createWatermarker } from './images/watermark/index.ts';
import { buildModelEngines } from './engines/registry.ts';
import { loadBackendsConfig, defaultBackendsConfig } from './config/backends.ts';
import { buildApp } from './http/app.ts';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const SOFTWARE = `qwen-image-server ${VERSION}`;

export interface StartOptions {
  /** Tests: replace an engine (e.g. wrap it to be slow) before it is put behind its queue. */
  wrapEngine?: (engine: Engine, modelId: string) => Engine;
  logger?: Logger;
}

export interface RunningServer {
  url: string;
  config: Config;
  /** Stops accepting, drains in-flight requests, closes engines and the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'qwen-image-server' } });
  const db = openDatabase(path.join(config.dataDir, 'server.sqlite'));
  const keys = createSqliteKeyStore(db);
  keys.syncEnvKeys(config.apiKeys);
  const usage = createSqliteUsageStore(db);
  const blobs = createFsBlobStore(path.join(config.dataDir, 'images'));
  const fetcher = createImageFetcher(config.image);

  // No routing file: the builtin engine alone serves alibaba/qwen-image-2-0.
  const backends = config.backendsConfigPath ? await loadBackendsConfig(config.backendsConfigPath) : defaultBackendsConfig();
  const engines = buildModelEngines({
    config: backends,
    createBuiltin: ({ backendId }) => createBuiltinEngine({ id: backendId, modelDir: config.builtinModelDir, threads: config.ortThreads }),
    logger,
    env: process.env,
  });
  // The offline rewriter maps words to the bundled model's vocabulary only when that model draws.
  const usesBuiltin = Object.values(backends.models).some((m) => m.backends.some((b) => b.type === 'builtin'));

  const models = new Map<string, ModelSlot>();
  for (const [modelId, engine] of engines) {
    const wrapped = options.wrapEngine ? options.wrapEngine(engine, modelId) : engine;
    models.set(modelId, { engine: wrapped, queue: new BoundedQueue(config.engineConcurrency, config.engineMaxQueue, modelId) });
  }

  const enhancer = createPromptEnhancer({
    llm: config.enhancer.url && config.enhancer.model
      ? { url: config.enhancer.url, model: config.enhancer.model, apiKey: config.enhancer.apiKey, timeoutMs: config.enhancer.timeoutMs }
      : undefined,
    cache: createSqlitePromptCache(db),
    vocabulary: usesBuiltin ? DEFAULT_BUNDLED_VOCABULARY : undefined,
    logger,
  });
  const watermarker: Watermarker = createWatermarker(config.watermark.key ? { key: config.watermark.key } : {});
  const decodeLimits = { maxPixels: config.image.maxPixels, maxSidePx: config.image.maxSidePx };

  let publicUrl = config.publicUrl ?? '';
  const generateImage = createGenerateImage({
    models,
    fetcher,
    decodeLimits,
    enhancer,
    watermarker,
    watermarkIssuerId: config.watermark.issuerId,
    blobs,
    usage,
    pricesUsd: config.pricesUsd,
    creditsPerUsd: CREDITS_PER_USD,
    publicUrl: () => publicUrl,
    requestTimeoutMs: config.requestTimeoutMs,
    software: SOFTWARE,
  });

  let ready = false;
  const app = await buildApp({
    logger,
    maxBodyBytes: config.maxBodyBytes,
    keys,
    usage,
    blobs,
    validateGeneration: createGenerationValidator(),
    generateImage,
    models,
    openapi: buildOpenApiDocument(config.publicUrl ?? '/', VERSION),
    isReady: () => ready,
    watermark: {
      watermarker,
      fetcher,
      // Detection looks at the image as given, up to the pixel cap: no downscale before it.
      decodeLimits: { maxPixels: config.image.maxPixels, maxSidePx: 8192 },
      maxUploadBytes: config.image.maxBytes,
    },
  });

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const listenHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  publicUrl = config.publicUrl ?? url;

  // Engines load after the socket is open so /healthz can say "loading" meanwhile.
  await Promise.all([...models.values()].map((s) => s.engine.load()));
  ready = true;
  logger.info({ url, models: [...models.keys()], dataDir: config.dataDir }, 'server ready');

  let closing: Promise<void> | null = null;
  return {
    url,
    config,
    close() {
      closing ??= (async () => {
        await app.close();
        await Promise.all([...models.values()].map((s) => s.engine.close().catch((err: Error) => logger.warn({ err }, 'engine close failed'))));
        await fetcher.close();
        db.close();
      })();
      return closing;
    },
  };
}

async function run(): Promise<void> {
  const config = readConfig(process.env);
  if (config.apiKeys.length === 0) {
    process.stderr.write('note: API_KEYS is empty; create a key with `npm run cli -- keys create` or set API_KEYS=...\n');
  }
  const server = await startServer(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: draining in-flight requests (up to ${config.shutdownGraceMs} ms)\n`);
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs);
    force.unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  run().catch((err: unknown) => {
    process.stderr.write(`failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
