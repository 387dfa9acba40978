/**
 * npm run bench:load — many clients against one started server for a bounded time (issue 13):
 *
 *   npx tsx bench/load.ts [--seconds 60] [--clients 50] [--size square] [--model-dir model/weights]
 *                         [--max-queue 16] [--ignore-retry-after] [--keep]
 *
 * The server runs as its own process (`node --import tsx src/main.ts`, the builtin engine, a fresh
 * DATA_DIR) so that its RSS is its own. Each client is a closed loop of synchronous
 * POST /v1/images/generations calls (response_format url, so every success stores an image): the next
 * call goes out when the last one answered, and after a 503 the client waits what Retry-After says (as
 * a well-behaved client does; `--ignore-retry-after` retries at once). After `--seconds` no new call
 * starts; calls in flight finish (at most REQUEST_TIMEOUT_MS more). Then the server is stopped with
 * SIGTERM and its database and image folder are read back.
 *
 * Prints: status counts, p50/p95 latency of the successes, whether every 503 carried Retry-After,
 * server RSS before the load / peak (the kernel's VmHWM, and the highest sampled VmRSS) / after it,
 * and the reconciliation ledger rows = successes = stored images = jobs succeeded = the server's own
 * qis_generations_total. Exits 1 when the reconciliation fails or a 503 lacked Retry-After.
 */
import { spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { opt, flag } from './cli.ts';

const positive = (name: string, fallback: string) => {
  const value = Number(opt(name, fallback));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
};

const ROOT = path.resolve(import.meta.dirname, '..');
const SECONDS = positive('seconds', '60');
const CLIENTS = Math.round(positive('clients', '50'));
const SIZE = opt('size', 'square');
const MODEL_DIR = path.resolve(ROOT, opt('model-dir', 'model/weights'));
const MAX_QUEUE = opt('max-queue', '16');
const HONOUR_RETRY_AFTER = !flag('ignore-retry-after');
const KEEP = flag('keep');
/** A call still open this long after the end of the load is abandoned (the server's own limit is REQUEST_TIMEOUT_MS). */
const REQUEST_TIMEOUT_MS = 120_000;
const KEY = 'bench-load-key';
const METRICS_TOKEN = 'bench-load-metrics';
const PROMPTS = [
  'a red house on the left and a green tree on the right at sunset',
  'a blue circle above a yellow square, night, stars',
  'snowy mountains under a pale moon',
  'a small boat on the sea, clouds, day',
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

/** kB figures from /proc/<pid>/status (Linux). */
function memoryOf(pid: number): { rssKb: number; hwmKb: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  } catch {
    return null;
  }
}

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
/** Resolves after `ms`, or at once when `signal` fires (the end of the load). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-bench-load-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      API_KEYS: KEY,
      BUILTIN_MODEL_DIR: MODEL_DIR,
      ENGINE_MAX_QUEUE: MAX_QUEUE,
      METRICS_TOKEN,
      // Per-request info lines would cost the server CPU the clients are measuring.
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  let serverGone = false;
  void exited.then(() => (serverGone = true));

  try {
    for (;;) {
      if (serverGone) throw new Error('the server exited during start-up');
      const ok = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await sleep(100);
    }
    const pid = server.pid!;
    const before = memoryOf(pid);
    let peakRssKb = before?.rssKb ?? 0;
    const sampler = setInterval(() => {
      const m = memoryOf(pid);
      if (m && m.rssKb > peakRssKb) peakRssKb = m.rssKb;
    }, 100);

    const statuses = new Map<string, number>();
    const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
    const okLatenciesMs: number[] = [];
    let unavailable = 0;
    let unavailableWithRetryAfter = 0;
    const retryAfterValues = new Set<string>();
    const stopSignal = new AbortController();
    const startedAt = performance.now();
    const deadline = startedAt + SECONDS * 1000;
    // One controller per call, aborted together at the hard stop: a fetch given one long-lived signal
    // leaves a listener on it per call (thousands of 503s), so no signal is shared between calls.
    const inFlight = new Set<AbortController>();
    let abandoned = false;
    const hardStopTimer = setTimeout(() => {
      abandoned = true;
      for (const c of inFlight) c.abort();
    }, SECONDS * 1000 + REQUEST_TIMEOUT_MS);
    setMaxListeners(CLIENTS + 10, stopSignal.signal);
    const loadAtStart = os.loadavg()[0]!;

    async function client(index: number): Promise<void> {
      let n = 0;
      while (performance.now() < deadline) {
        const body = {
          model: 'alibaba/qwen-image-2-0',
          prompt: PROMPTS[(index + n) % PROMPTS.length],
          image_size: SIZE,
          seed: (index * 100_003 + n) % 2_147_483_647,
        };
        n += 1;
        const t = performance.now();
        const call = new AbortController();
        inFlight.add(call);
        try {
          const res = await fetch(`${url}/v1/images/generations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
            signal: call.signal,
          });
          await res.arrayBuffer();
          const ms = performance.now() - t;
          count(String(res.status));
          if (res.status === 200) okLatenciesMs.push(ms);
          if (res.status === 503) {
            unavailable += 1;
            const retryAfter = res.headers.get('retry-after');
            if (retryAfter !== null && /^\d+$/.test(retryAfter)) unavailableWithRetryAfter += 1;
            if (retryAfter !== null) retryAfterValues.add(retryAfter);
            if (HONOUR_RETRY_AFTER && retryAfter !== null) {
              await sleep(Math.min(Number(retryAfter) * 1000, Math.max(0, deadline - performance.now())), stopSignal.signal);
            }
          }
        } catch (err) {
          count(abandoned ? 'abandoned' : `error ${(err as Error).name}`);
        } finally {
          inFlight.delete(call);
        }
      }
    }

    process.stdout.write(`${CLIENTS} clients for ${SECONDS} s against ${url} (builtin engine, ${path.relative(ROOT, MODEL_DIR) || MODEL_DIR}, ${SIZE}, ENGINE_MAX_QUEUE=${MAX_QUEUE}, Retry-After ${HONOUR_RETRY_AFTER ? 'honoured' : 'ignored'})\n`);
    const endTimer = setTimeout(() => stopSignal.abort(), SECONDS * 1000);
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
    clearTimeout(endTimer);
    clearTimeout(hardStopTimer);
    const loadAtEnd = os.loadavg()[0]!;
    const wallS = (performance.now() - startedAt) / 1000;
    clearInterval(sampler);
    const afterLoad = memoryOf(pid);

    const metricsText = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).then((r) => r.text());
    const generationsMetric = [...metricsText.matchAll(/^qis_generations_total\{[^}]*outcome="succeeded"[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);

    server.kill('SIGTERM');
    const exitCode = await exited;

    const db = new Database(path.join(dataDir, 'server.sqlite'), { readonly: true });
    const ledgerRows = (db.prepare('SELECT COUNT(*) AS n FROM usage_ledger').get() as { n: number }).n;
    const jobsSucceeded = (db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE status = 'succeeded'").get() as { n: number }).n;
    db.close();
    const imagesDir = path.join(dataDir, 'images', 'generations');
    const storedImages = fs.existsSync(imagesDir) ? fs.readdirSync(imagesDir).filter((f) => f.endsWith('.png')).length : 0;

    const successes = statuses.get('200') ?? 0;
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    const sorted = [...okLatenciesMs].sort((a, b) => a - b);
    const lines = [
      `requests: ${total} in ${wallS.toFixed(1)} s (last calls finished ${(wallS - SECONDS).toFixed(1)} s after the end of the load)`,
      `status counts: ${[...statuses].sort().map(([k, v]) => `${k}: ${v}`).join(', ')}`,
      `successes: ${successes} (${(successes / wallS).toFixed(2)} images/s); latency p50 ${percentile(sorted, 50).toFixed(0)} ms, p95 ${percentile(sorted, 95).toFixed(0)} ms, max ${percentile(sorted, 100).toFixed(0)} ms`,
      `503s with Retry-After: ${unavailableWithRetryAfter}/${unavailable}${retryAfterValues.size ? ` (values seen: ${[...retryAfterValues].sort((a, b) => Number(a) - Number(b)).join(', ')} s)` : ''}`,
      `server RSS: before ${before ? mb(before.rssKb) : '?'}, peak ${mb(peakRssKb)} sampled / ${afterLoad ? mb(afterLoad.hwmKb) : '?'} VmHWM, after ${afterLoad ? mb(afterLoad.rssKb) : '?'}`,
      `reconciliation: ledger rows ${ledgerRows}, successes ${successes}, stored images ${storedImages}, jobs succeeded ${jobsSucceeded}, qis_generations_total{outcome="succeeded"} ${generationsMetric}`,
      `server exit code after SIGTERM: ${exitCode}; 1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end (${os.cpus().length} cores)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const reconciled = ledgerRows === successes && storedImages === successes && jobsSucceeded === successes && generationsMetric === successes;
    const retryAfterOk = unavailableWithRetryAfter === unavailable;
    process.stdout.write(`${reconciled ? 'OK' : 'MISMATCH'}: ledger rows = successes = stored images; ${retryAfterOk ? 'OK' : 'MISSING'}: Retry-After on every 503\n`);
    if (!reconciled || !retryAfterOk) process.exitCode = 1;
  } finally {
    if (!serverGone) {
      server.kill('SIGKILL');
      await exited;
    }
    if (!KEEP) fs.rmSync(dataDir, { recursive: true, force: true });
    else process.stdout.write(`data kept in ${dataDir}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:load failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
