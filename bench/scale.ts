/**
 * npm run bench:scale — the cost and the scaling of the distributed job system (docs/deploy.md), on
 * real parts started here: redis-server and PostgreSQL 15 (the test helpers start them on free ports in
 * temporary directories), server processes started as an operator would (`node --import tsx src/main.ts`).
 *
 * 1. overhead  one ROLE=all process in front of a fake GPU that answers at once (the no-op engine), on the
 *              embedded store (SQLite + in-process queue) and on Postgres + Redis (BullMQ, pub/sub events,
 *              shared backend slots): latency of one synchronous request at a time (the per-job floor;
 *              the difference is what Redis + Postgres add) and jobs/s with 16 clients in a closed loop.
 * 2. scaling   one ROLE=api process and 1, 2 or 4 ROLE=worker processes over Postgres + Redis, each worker
 *              next to its own fake GPU (concurrency 1, fixed latency --gpu-ms): jobs/s with 4 clients per
 *              worker in a closed loop, and the efficiency against linear (k workers ÷ k × one worker).
 *
 * Images go to one shared DATA_DIR/images folder (every process is on this machine); s3rver is left out
 * on purpose: it is a test stand-in whose speed says nothing about S3's.
 * Each figure is taken per round; the tables show the median over rounds and [min–max].
 *   npx tsx bench/scale.ts [--rounds 3] [--seq-jobs 100] [--jobs 300] [--gpu-ms 500] [--scale-jobs 40] [--workers 1,2,4]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PUBLIC_MODEL_ID } from '../src/config/config.ts';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.ts';
import { startRedis, type TestRedis } from '../test/helpers/redis.ts';
import { killSpawnedServers, serverProcessEnv, startServerProcess, type ServerProcess } from '../test/helpers/server-process.ts';
import { TEST_KEY } from '../test/helpers/server.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../test/fakes/fake-openai-images.ts';
import { opt } from './cli.ts';

const ROUNDS = Number(opt('rounds', '3'));
const SEQ_JOBS = Number(opt('seq-jobs', '100'));
const JOBS = Number(opt('jobs', '300'));
const GPU_MS = Number(opt('gpu-ms', '500'));
const SCALE_JOBS_PER_WORKER = Number(opt('scale-jobs', '40'));
const WORKER_COUNTS = opt('workers', '1,2,4').split(',').map(Number);
const CLIENTS = 16;
const CLIENTS_PER_WORKER = 4;

const BODY = { model: PUBLIC_MODEL_ID, prompt: 'a red house by a green tree', size: '512x512', enhance_prompt: false, watermark: false };

function routingFile(backends: Array<{ id: string; fake: FakeOpenaiImages }>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-bench-routing-'));
  const file = path.join(dir, 'backends.yaml');
  const lines = backends.map(
    ({ id, fake }) => `      - { id: ${id}, type: openai, url: "${fake.url}", model: Qwen/Qwen-Image, priority: 0, concurrency: 1, extraFields: [seed] }`,
  );
  fs.writeFileSync(file, ['models:', `  ${PUBLIC_MODEL_ID}:`, '    backends:', ...lines, 'circuitBreaker: { failureThreshold: 100000, resetMs: 1000 }', ''].join('\n'));
  return file;
}

async function generate(baseUrl: string): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(BODY),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`generation answered ${res.status}: ${text.slice(0, 300)}`);
}

/** Latency of each of `n` requests made one after the other, ms. */
async function sequential(baseUrl: string, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await generate(baseUrl);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** jobs/s of `n` requests made by `clients` clients, each sending its next one when the last answered. */
async function closedLoop(baseUrls: string[], n: number, clients: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (next < n) {
        next++;
        await generate(baseUrls[c % baseUrls.length]!);
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const cell = (xs: number[], digits: number) => `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]`;

async function stop(procs: ServerProcess[]): Promise<void> {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

interface Services {
  pg: TestPostgres;
  redis: TestRedis;
}

/** Environment of a process on fresh Postgres + Redis state (a new database, a new key prefix). */
async function distributedEnv(services: Services, label: string): Promise<Record<string, string>> {
  return {
    DATABASE_URL: await services.pg.createDatabase(label.replace(/[^a-z0-9]/g, '')),
    REDIS_URL: services.redis.url,
    REDIS_PREFIX: `bench-${label}`,
    KEY_HASH_SECRET: 'bench-scale-key-hash-secret',
    ENGINE_MAX_QUEUE: '1000',
    WORKER_POLL_MS: '200',
    LOG_LEVEL: 'warn',
  };
}

async function overhead(services: Services, gpu: FakeOpenaiImages) {
  const results: Record<string, { seqMs: number[]; seqSpread: number[]; jobsPerS: number[] }> = {};
  for (const stack of ['embedded', 'postgres+redis'] as const) {
    const r = (results[stack] = { seqMs: [] as number[], seqSpread: [] as number[], jobsPerS: [] as number[] });
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-bench-scale-'));
      const extra = stack === 'embedded' ? { LOG_LEVEL: 'warn', ENGINE_MAX_QUEUE: '1000' } : await distributedEnv(services, `o${round}`);
      // LOG_LEVEL warn would hide "server ready": the helper waits for it, so keep info and drop it here.
      const proc = await startServerProcess(serverProcessEnv(dataDir, { ...extra, LOG_LEVEL: 'info', BACKENDS_CONFIG: routingFile([{ id: 'gpu', fake: gpu }]) }));
      try {
        await sequential(proc.url, 10); // warm-up: connections, JIT, first PNG encode
        const ms = await sequential(proc.url, SEQ_JOBS);
        r.seqMs.push(median(ms));
        r.seqSpread.push(Math.max(...ms) - Math.min(...ms));
        r.jobsPerS.push(await closedLoop([proc.url], JOBS, CLIENTS));
      } finally {
        await stop([proc]);
      }
      process.stderr.write(`overhead ${stack} round ${round + 1}: ${r.seqMs.at(-1)!.toFixed(1)} ms, ${r.jobsPerS.at(-1)!.toFixed(1)} jobs/s\n`);
    }
  }
  return results;
}

async function scaling(services: Services) {
  const gpus: FakeOpenaiImages[] = [];
  for (let i = 0; i < Math.max(...WORKER_COUNTS); i++) {
    const fake = await startFakeOpenaiImages();
    fake.delayMs = GPU_MS;
    gpus.push(fake);
  }
  const rows: Array<{ workers: number; jobsPerS: number[]; maxInFlight: number }> = [];
  try {
    for (const k of WORKER_COUNTS) {
      const row = { workers: k, jobsPerS: [] as number[], maxInFlight: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-bench-scale-'));
        const env = { ...(await distributedEnv(services, `s${k}r${round}`)), LOG_LEVEL: 'info' };
        const mine = gpus.slice(0, k).map((fake, i) => ({ id: `gpu-${i}`, fake }));
        // The api knows every GPU (its admission counts their slots); each worker fronts its own.
        const api = await startServerProcess(serverProcessEnv(dataDir, { ...env, ROLE: 'api', BACKENDS_CONFIG: routingFile(mine) }));
        const workers = await Promise.all(
          mine.map((backend) =>
            startServerProcess(serverProcessEnv(dataDir, { ...env, ROLE: 'worker', WORKER_HEALTH_PORT: '0', PUBLIC_URL: api.url, BACKENDS_CONFIG: routingFile([backend]) })),
          ),
        );
        try {
          for (const g of gpus) g.reset();
          for (const g of gpus) g.delayMs = GPU_MS;
          row.jobsPerS.push(await closedLoop([api.url], SCALE_JOBS_PER_WORKER * k, CLIENTS_PER_WORKER * k));
          row.maxInFlight = Math.max(row.maxInFlight, ...gpus.map((g) => g.maxInFlight));
        } finally {
          await stop([api, ...workers]);
        }
        process.stderr.write(`scaling ${k} worker(s) round ${round + 1}: ${row.jobsPerS.at(-1)!.toFixed(2)} jobs/s\n`);
      }
      rows.push(row);
    }
  } finally {
    await Promise.all(gpus.map((g) => g.close()));
  }
  return rows;
}

async function main(): Promise<void> {
  const [pg, redis, gpu] = await Promise.all([startPostgres(), startRedis(), startFakeOpenaiImages()]);
  gpu.delayMs = 0;
  const services = { pg, redis };
  try {
    const o = await overhead(services, gpu);
    const s = await scaling(services);
    const cores = os.cpus().length;
    console.log(`\nbench:scale on ${cores} cores, ${ROUNDS} rounds, median [min–max]\n`);
    console.log(`1. overhead: one ROLE=all process, a GPU that answers at once, 512×512 PNG, no watermark`);
    console.log(`| store | one job at a time, ms (median of ${SEQ_JOBS}) | spread within a round, ms | ${CLIENTS} clients, jobs/s (${JOBS} jobs) |`);
    console.log('|---|---|---|---|');
    for (const [name, r] of Object.entries(o)) console.log(`| ${name} | ${cell(r.seqMs, 1)} | ${cell(r.seqSpread, 1)} | ${cell(r.jobsPerS, 1)} |`);
    const added = median(o['postgres+redis']!.seqMs) - median(o.embedded!.seqMs);
    console.log(`added latency per job (Postgres + Redis − embedded, medians): ${added.toFixed(1)} ms\n`);
    console.log(`2. scaling: ROLE=api + k ROLE=worker processes, one fake GPU (concurrency 1, ${GPU_MS} ms) per worker`);
    console.log(`| workers | jobs/s | ideal (k × 1 worker) | efficiency | max in flight on one GPU |`);
    console.log('|---|---|---|---|---|');
    const one = median(s.find((r) => r.workers === 1)?.jobsPerS ?? s[0]!.jobsPerS) / (s.find((r) => r.workers === 1) ? 1 : s[0]!.workers);
    for (const row of s) {
      const ideal = one * row.workers;
      console.log(`| ${row.workers} | ${cell(row.jobsPerS, 2)} | ${ideal.toFixed(2)} | ${((median(row.jobsPerS) / ideal) * 100).toFixed(0)}% | ${row.maxInFlight} |`);
    }
  } finally {
    killSpawnedServers();
    await Promise.all([gpu.close(), redis.stop(), pg.stop()]);
  }
}

main().catch((err: unknown) => {
  killSpawnedServers();
  process.stderr.write(`bench:scale failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
