/**
 * Every setting the server reads, with its default, in one place. Only main.ts calls `readConfig`
 * (with process.env); everything else receives the typed `Config`.
 */
import path from 'node:path';
import { readKeysConfig, type KeysConfig } from './keys.ts';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Base of the image URLs we return, without a trailing slash; undefined → the address we listen on. */
  publicUrl: string | undefined;
  /** Plain keys from API_KEYS, hashed into the key store at start. */
  apiKeys: string[];
  /** USD per image, per public model id. */
  pricesUsd: Record<string, number>;
  /** Directory of the builtin engine's ONNX files and manifest. */
  builtinModelDir: string;
  /** ONNX Runtime intra-op threads for the builtin engine. */
  ortThreads: number;
  /** Path of the backends routing file (JSON or YAML); undefined → builtin engine only. */
  backendsConfigPath: string | undefined;
  /** Generations running at once per public model. */
  engineConcurrency: number;
  /** Requests waiting per public model before we answer 503. */
  engineMaxQueue: number;
  /** Whole-request time limit for a generation. */
  requestTimeoutMs: number;
  /** Socket-level limits on how a client sends its request (not on how long the answer takes). */
  http: { headersTimeoutMs: number; bodyTimeoutMs: number; keepAliveTimeoutMs: number; timeoutCheckIntervalMs: number };
  /** Largest JSON body we accept (data: URIs of three images must fit). */
  maxBodyBytes: number;
  /** Largest `n` (images per request, each charged). */
  maxImagesPerRequest: number;
  image: ImageInputConfig;
  enhancer: EnhancerConfig;
  /** issuerId goes into every mark; key seeds the mark's patterns (marks from another key are invisible). */
  watermark: { issuerId: number; key: string | undefined };
  logLevel: string;
  /** Time SIGTERM waits for in-flight requests before closing anyway. */
  shutdownGraceMs: number;
  jobs: JobsConfig;
  webhooks: WebhooksConfig;
  /** ADMIN_API_KEYS, KEY_HASH_SECRET, KEY_DEFAULT_* (config/keys.ts). */
  keys: KeysConfig;
  metrics: MetricsConfig;
  c2pa: C2paConfig;
  /** BLOB_STORE and its S3 settings (see the blob store block below). */
  blobs: BlobsConfig;
  // ---- Redis (issue 14: jobs, events, backend slots and rate windows shared across processes)
  redis: RedisConfig;
  /** DATABASE_URL (store in Postgres; see the database block at the end of this file). */
  database: DatabaseConfig;
  // ---- roles (issue 14): which halves of the server this process runs (readRoleConfig below)
  role: Role;
  worker: WorkerConfig;
  /** A dependency check of GET /healthz that has not answered within this is reported down. */
  healthCheckTimeoutMs: number;
}

export interface MetricsConfig {
  /** Bearer token GET /metrics requires; unset: the API port serves no metrics. */
  token: string | undefined;
  /** A second listener serving only GET /metrics (no auth unless `token` is set); undefined: none. */
  port: number | undefined;
  host: string;
}

/** Content credentials (docs/provenance.md). PEM values are the PEM text itself or a resolved file path. */
export interface C2paConfig {
  /** Signing certificate (then any intermediates); undefined with `key` → nothing is signed. */
  cert: string | undefined;
  key: string | undefined;
  /** CA certificates a verified manifest must chain to, to read `trusted`. */
  trustAnchors: string | undefined;
  /** The prompt itself in the manifest, not only its SHA-256. */
  includePrompt: boolean;
  /** A thumbnail in the manifest (c2pa-rs's default; about triples a PNG's size). */
  thumbnail: boolean;
}

export interface JobsConfig {
  /** Finished jobs, their images and idempotency records are deleted this long after they end. */
  retentionMs: number;
  /** Runs of one job (a crash mid-run counts) before it is failed as interrupted. */
  maxAttempts: number;
}

export interface WebhooksConfig {
  /** Allow webhook URLs on private, loopback and link-local addresses (a receiver on the same host or LAN). */
  allowPrivate: boolean;
  timeoutMs: number;
  retryBaseMs: number;
  maxAttempts: number;
}

export interface ImageInputConfig {
  allowPrivateUrls: boolean;
  fetchTimeoutMs: number;
  maxBytes: number;
  /** Decompression-bomb guard: width × height of an input image. */
  maxPixels: number;
  maxRedirects: number;
  /** Reference images larger than this on their longest side are scaled down before the engine sees them. */
  maxSidePx: number;
  /** Image decodes (references, watermark uploads) running at once, and waiting, before a 503. */
  decodeConcurrency: number;
  decodeMaxQueue: number;
}

export interface EnhancerConfig {
  url: string | undefined;
  model: string | undefined;
  apiKey: string | undefined;
  timeoutMs: number;
}

// ---------------------------------------------------------------- Redis (issue 14)
/**
 * REDIS_URL switches the job queue to BullMQ and puts job events, backend concurrency slots and the
 * per-minute request windows in Redis (docs/redis.md). Unset: everything stays in this process.
 */
export interface RedisConfig {
  /** redis://[user[:password]@]host[:port][/db] or rediss:// (TLS); absent: no Redis. */
  url?: string;
  /** Prefix of every key and channel, so deployments can share one Redis (REDIS_PREFIX, default `qis`). */
  prefix: string;
  /**
   * How long a claimed job's queue lock lasts without renewal, ms (REDIS_JOB_LOCK_MS, default 30 s): a worker
   * that dies (kill -9, a lost host) has its job handed to another worker about this long afterwards. The
   * stalled-job check and the backend-slot leases use the same figure.
   */
  jobLockMs: number;
}

function readRedisConfig(env: Env): RedisConfig {
  const url = env.REDIS_URL?.trim() || undefined;
  if (url !== undefined && !/^rediss?:\/\/[^/]/.test(url)) {
    throw new ConfigError(`REDIS_URL must start with redis:// or rediss:// followed by a host, got "${url.replace(/\/\/[^@/]*@/, '//***@')}"`);
  }
  const prefix = env.REDIS_PREFIX?.trim() || 'qis';
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(prefix)) {
    throw new ConfigError(`REDIS_PREFIX must be 1 to 64 letters, digits or . _ : -, got "${prefix}"`);
  }
  return { ...(url === undefined ? {} : { url }), prefix, jobLockMs: intSetting(env, 'REDIS_JOB_LOCK_MS', 30_000, 1000, 600_000) };
}
// ---------------------------------------------------------------- end of Redis

/** Default price of `alibaba/qwen-image-2-0` per image, from the seed's example response. */
export const DEFAULT_PRICE_USD = 0.0455;
/** Credits per USD (91000 credits for $0.0455 in the seed); defined with the money conversions. */
export { CREDITS_PER_USD } from '../domain/money.ts';
export const PUBLIC_MODEL_ID = 'alibaba/qwen-image-2-0';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function intSetting(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function boolSetting(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be 1/0/true/false, got "${raw}"`);
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: an integer of milliseconds, or a number with a unit (`90s`, `30m`, `24h`, `7d`). */
function durationSetting(env: Env, name: string, fallbackMs: number, minMs: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw);
  if (!m) throw new ConfigError(`${name} must be a duration like 7d, 24h, 30m, 90s or a number of milliseconds, got "${raw}"`);
  const ms = Math.round(Number(m[1]) * DURATION_UNITS_MS[m[2] ?? 'ms']!);
  if (ms < minMs) throw new ConfigError(`${name} must be at least ${minMs} ms, got "${raw}"`);
  return ms;
}

function parsePrices(raw: string | undefined): Record<string, number> {
  const prices: Record<string, number> = { [PUBLIC_MODEL_ID]: DEFAULT_PRICE_USD };
  if (raw === undefined || raw === '') return prices;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('PRICES_USD must be a JSON object like {"alibaba/qwen-image-2-0": 0.0455}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('PRICES_USD must be a JSON object of model id → USD per image');
  }
  for (const [model, price] of Object.entries(parsed)) {
    if (typeof price !== 'number' || !Number.isFinite(price) || price < 0) {
      throw new ConfigError(`PRICES_USD["${model}"] must be a non-negative number`);
    }
    prices[model] = price;
  }
  return prices;
}

/** A PEM setting: inline PEM text as it is, anything else a path resolved against cwd. */
function pemSetting(env: Env, name: string, cwd: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw.trimStart().startsWith('-----BEGIN') ? raw : path.resolve(cwd, raw.trim());
}

function readC2paConfig(env: Env, cwd: string): C2paConfig {
  const cert = pemSetting(env, 'C2PA_CERT', cwd);
  const key = pemSetting(env, 'C2PA_KEY', cwd);
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`C2PA_CERT and C2PA_KEY go together: ${cert === undefined ? 'C2PA_KEY' : 'C2PA_CERT'} is set, the other is not`);
  }
  return {
    cert,
    key,
    trustAnchors: pemSetting(env, 'C2PA_TRUST_ANCHORS', cwd),
    includePrompt: boolSetting(env, 'C2PA_INCLUDE_PROMPT', false),
    thumbnail: boolSetting(env, 'C2PA_THUMBNAIL', false),
  };
}

// ---------------------------------------------------------------- blob store (BLOB_STORE, S3_*, BLOB_URLS; docs/blobs.md)
/** Where generated images and stored references live, and which URL a client is given for an image. */
export type BlobsConfig =
  | {
      kind: 'fs';
      /** Absolute folder from BLOB_STORE=file:///...; undefined → DATA_DIR/images. */
      root: string | undefined;
      urls: 'proxy';
    }
  | {
      kind: 's3';
      bucket: string;
      /** Key prefix inside the bucket, without leading or trailing slashes; '' for the bucket's root. */
      prefix: string;
      /** S3_ENDPOINT (MinIO, R2, s3rver); undefined → AWS's own endpoint for the region. */
      endpoint: string | undefined;
      region: string;
      /** `bucket` in the path rather than the host name: on by default with S3_ENDPOINT (S3_FORCE_PATH_STYLE). */
      forcePathStyle: boolean;
      /** proxy: the server's own /files/... URL, streamed from the bucket; presigned: a GET URL of the bucket itself. */
      urls: 'proxy' | 'presigned';
      /** Lifetime of a presigned URL in seconds (BLOB_PRESIGN_TTL_S). */
      presignTtlS: number;
    };

/** SigV4 presigned URLs live at most 7 days (X-Amz-Expires ≤ 604800, AWS S3 API reference, "Authenticating Requests: Using Query Parameters"). */
export const MAX_PRESIGN_TTL_S = 7 * 86_400;
/** S3 bucket naming rules, simplified: 3–63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function readBlobsConfig(env: Env): BlobsConfig {
  const raw = env.BLOB_STORE?.trim() ?? '';
  const urls = env.BLOB_URLS?.trim() || 'proxy';
  if (urls !== 'proxy' && urls !== 'presigned') throw new ConfigError(`BLOB_URLS must be proxy or presigned, got "${urls}"`);
  if (raw === '' || raw.startsWith('file:')) {
    let root: string | undefined;
    if (raw !== '') {
      const url = URL.canParse(raw) ? new URL(raw) : null;
      if (!url || url.host !== '' || url.pathname === '/' || url.search || url.hash) {
        throw new ConfigError(`BLOB_STORE=file:// needs an absolute folder like file:///var/lib/qwen-images, got "${raw}"`);
      }
      root = decodeURIComponent(url.pathname).replace(/\/+$/, '');
    }
    if (urls === 'presigned') throw new ConfigError('BLOB_URLS=presigned needs an S3 BLOB_STORE (s3://bucket/prefix): a folder has nothing to presign');
    return { kind: 'fs', root, urls: 'proxy' };
  }
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(raw);
  if (!m) throw new ConfigError(`BLOB_STORE must be s3://bucket/prefix or file:///absolute/folder, got "${raw}"`);
  const bucket = m[1]!;
  if (!BUCKET_NAME.test(bucket)) throw new ConfigError(`BLOB_STORE bucket "${bucket}" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  // The same rule as a blob key's (blobs/blob-key.ts): plain segments, so prefix + key is one unambiguous path.
  if (prefix !== '' && (!/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/.test(prefix) || prefix.includes('..'))) {
    throw new ConfigError(`BLOB_STORE prefix "${prefix}" must be segments of letters, digits, ".", "_", "-" (each starting with a letter or digit, no "..") separated by "/"`);
  }
  const endpoint = env.S3_ENDPOINT?.trim() || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) throw new ConfigError(`S3_ENDPOINT must start with http:// or https://, got "${endpoint}"`);
  const region = env.S3_REGION?.trim() || 'us-east-1';
  if (!/^[a-z0-9-]+$/.test(region)) throw new ConfigError(`S3_REGION must be a region name like us-east-1 (R2: auto), got "${region}"`);
  return {
    kind: 's3',
    bucket,
    prefix,
    endpoint: endpoint?.replace(/\/+$/, ''),
    region,
    forcePathStyle: boolSetting(env, 'S3_FORCE_PATH_STYLE', endpoint !== undefined),
    urls,
    presignTtlS: intSetting(env, 'BLOB_PRESIGN_TTL_S', 3600, 1, MAX_PRESIGN_TTL_S),
  };
}
// ---------------------------------------------------------------- end of the blob store block

export function readConfig(env: Env, cwd: string = process.cwd()): Config {
  const port = intSetting(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const dataDir = path.resolve(cwd, env.DATA_DIR || './data');
  const publicUrl = env.PUBLIC_URL ? env.PUBLIC_URL.replace(/\/+$/, '') : undefined;
  if (publicUrl !== undefined && !/^https?:\/\/[^/]/.test(publicUrl)) throw new ConfigError(`PUBLIC_URL must start with http:// or https://, got "${publicUrl}"`);
  const apiKeys = (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  const issuerId = intSetting(env, 'WATERMARK_ISSUER_ID', 1, 0, 65535);
  return {
    port,
    host,
    dataDir,
    publicUrl,
    apiKeys,
    pricesUsd: parsePrices(env.PRICES_USD),
    builtinModelDir: path.resolve(cwd, env.BUILTIN_MODEL_DIR || './model/weights'),
    ortThreads: intSetting(env, 'ORT_THREADS', 2, 1, 256),
    backendsConfigPath: env.BACKENDS_CONFIG ? path.resolve(cwd, env.BACKENDS_CONFIG) : undefined,
    engineConcurrency: intSetting(env, 'ENGINE_CONCURRENCY', 1, 1, 1024),
    engineMaxQueue: intSetting(env, 'ENGINE_MAX_QUEUE', 16, 0, 100_000),
    requestTimeoutMs: intSetting(env, 'REQUEST_TIMEOUT_MS', 120_000, 100, 3_600_000),
    http: (() => {
      const headersTimeoutMs = intSetting(env, 'HEADERS_TIMEOUT_MS', 15_000, 100, 600_000);
      const bodyTimeoutMs = intSetting(env, 'BODY_TIMEOUT_MS', 60_000, 100, 3_600_000);
      // Node requires the headers' limit to be within the whole request's.
      if (headersTimeoutMs > bodyTimeoutMs) throw new Error(`HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed BODY_TIMEOUT_MS (${bodyTimeoutMs})`);
      return {
        headersTimeoutMs,
        bodyTimeoutMs,
        keepAliveTimeoutMs: intSetting(env, 'KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000),
        timeoutCheckIntervalMs: intSetting(env, 'TIMEOUT_CHECK_INTERVAL_MS', 5_000, 10, 60_000),
      };
    })(),
    maxBodyBytes: intSetting(env, 'MAX_BODY_BYTES', 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxImagesPerRequest: intSetting(env, 'MAX_IMAGES_PER_REQUEST', 4, 1, 10),
    image: {
      allowPrivateUrls: boolSetting(env, 'ALLOW_PRIVATE_IMAGE_URLS', false),
      fetchTimeoutMs: intSetting(env, 'IMAGE_FETCH_TIMEOUT_MS', 10_000, 100, 600_000),
      maxBytes: intSetting(env, 'MAX_IMAGE_BYTES', 20 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxPixels: intSetting(env, 'MAX_IMAGE_PIXELS', 40_000_000, 1, 1_000_000_000),
      maxRedirects: intSetting(env, 'IMAGE_FETCH_MAX_REDIRECTS', 3, 0, 20),
      maxSidePx: intSetting(env, 'REFERENCE_MAX_SIDE_PX', 1536, 64, 8192),
      decodeConcurrency: intSetting(env, 'IMAGE_DECODE_CONCURRENCY', 2, 1, 256),
      decodeMaxQueue: intSetting(env, 'IMAGE_DECODE_MAX_QUEUE', 16, 0, 100_000),
    },
    enhancer: {
      url: env.PROMPT_ENHANCER_URL || undefined,
      model: env.PROMPT_ENHANCER_MODEL || undefined,
      apiKey: env.PROMPT_ENHANCER_API_KEY || undefined,
      timeoutMs: intSetting(env, 'PROMPT_ENHANCER_TIMEOUT_MS', 10_000, 1, 600_000),
    },
    watermark: { issuerId, key: env.WATERMARK_KEY || undefined },
    logLevel: env.LOG_LEVEL || 'info',
    shutdownGraceMs: intSetting(env, 'SHUTDOWN_GRACE_MS', 30_000, 0, 3_600_000),
    jobs: {
      retentionMs: durationSetting(env, 'JOB_RETENTION', 7 * 86_400_000, 1000),
      maxAttempts: intSetting(env, 'JOB_MAX_ATTEMPTS', 3, 1, 100),
    },
    webhooks: {
      allowPrivate: boolSetting(env, 'WEBHOOK_ALLOW_PRIVATE_URLS', false),
      timeoutMs: intSetting(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
      retryBaseMs: intSetting(env, 'WEBHOOK_RETRY_BASE_MS', 5_000, 1, 3_600_000),
      maxAttempts: intSetting(env, 'WEBHOOK_MAX_ATTEMPTS', 18, 1, 100),
    },
    keys: readKeysConfig(env),
    metrics: {
      token: env.METRICS_TOKEN || undefined,
      port: env.METRICS_PORT ? intSetting(env, 'METRICS_PORT', 0, 0, 65535) : undefined,
      host: env.METRICS_HOST || '127.0.0.1',
    },
    c2pa: readC2paConfig(env, cwd),
    blobs: readBlobsConfig(env),
    redis: readRedisConfig(env),
    database: readDatabaseConfig(env),
    ...readRoleConfig(env, port, publicUrl),
  };
}

// ---------------------------------------------------------------- roles (issue 14)
/**
 * ROLE=api: HTTP, submit, results, SSE, cancel, webhooks, retention; no engine is loaded, no job run.
 * ROLE=worker: the engines and the job runner; only a health port (GET /healthz, /readyz, /metrics).
 * ROLE=all (default): both in one process, as `npm start` has always run. docs/deploy.md.
 */
export const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

export interface WorkerConfig {
  /** Port of a worker's health listener (WORKER_HEALTH_PORT; default PORT). Not used by api/all. */
  healthPort: number;
  /** How often a worker looks at the queue for jobs other processes enqueued (WORKER_POLL_MS). */
  pollMs: number;
  /** How often a worker of a shared queue puts back the jobs the queue lost (JOB_QUEUE_SWEEP_MS; job-recovery.ts sweepQueue). */
  queueSweepMs: number;
}

export function readRoleConfig(env: Env, port: number, publicUrl: string | undefined): { role: Role; worker: WorkerConfig; healthCheckTimeoutMs: number } {
  const raw = (env.ROLE ?? '').trim().toLowerCase();
  if (raw !== '' && !(ROLES as readonly string[]).includes(raw)) throw new ConfigError(`ROLE must be one of ${ROLES.join(', ')}, got "${env.ROLE}"`);
  // A worker writes the image URLs of its results, and nobody reaches a worker: they must name the api side.
  if (raw === 'worker' && publicUrl === undefined) {
    throw new ConfigError('ROLE=worker needs PUBLIC_URL: the image URLs a worker writes into results must point at the api processes (their load balancer)');
  }
  return {
    role: (raw || 'all') as Role,
    worker: {
      healthPort: intSetting(env, 'WORKER_HEALTH_PORT', port, 0, 65535),
      // 1 s: a job enqueued by an api process starts within a second even when no notification reaches the worker.
      pollMs: intSetting(env, 'WORKER_POLL_MS', 1000, 10, 600_000),
      // 60 s: a job Redis lost runs within two minutes; the store is read once a minute per worker.
      queueSweepMs: intSetting(env, 'JOB_QUEUE_SWEEP_MS', 60_000, 100, 3_600_000),
    },
    // 2 s: longer than a healthy database, Redis or bucket takes to answer, short enough for a probe's own timeout.
    healthCheckTimeoutMs: intSetting(env, 'HEALTH_CHECK_TIMEOUT_MS', 2000, 10, 60_000),
  };
}

// ---------------------------------------------------------------- database (issue 14: state in Postgres)
export interface DatabaseConfig {
  /**
   * DATABASE_URL: `postgres://` or `postgresql://` puts keys, the ledger, jobs, idempotency records, the prompt
   * cache and the webhook outbox in Postgres (docs/postgres.md); undefined: the SQLite file in DATA_DIR.
   */
  url: string | undefined;
}

function readDatabaseConfig(env: Env): DatabaseConfig {
  const raw = env.DATABASE_URL?.trim();
  if (!raw) return { url: undefined };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('DATABASE_URL must be a URL like postgres://user:password@host:5432/dbname');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql:// (got ${url.protocol}//); leave it unset to keep the SQLite file in DATA_DIR`);
  }
  return { url: raw };
}
