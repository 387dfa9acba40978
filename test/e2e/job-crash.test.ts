/**
 * Crash recovery of the job system, over real processes: 20 async jobs with webhooks are submitted
 * to a server started as `tsx src/main.ts`; once the first has succeeded it is SIGKILLed and started
 * again on the same DATA_DIR. After the restart every job must end (succeeded, or failed as
 * interrupted), be charged exactly once when it succeeded and never when it failed, leave no orphan
 * image or reference behind, and be announced to its webhook (at least once: a send cut by the kill
 * is sent again under the same webhook-id).
 *
 * Concurrency is 1 and a 512² image takes the tiny model ~0.15 s, so the kill after the first
 * success lands with ~18 jobs still queued and the next one running; the test reads what the kill
 * left (the database file, the process being dead) instead of assuming it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { MODEL, REPO_ROOT, TEST_KEY, TINY_MODEL_DIR } from '../helpers/server.ts';

const JOBS = 20;
/** Runs of a job before an interruption fails it: 3 leaves room for the one crash here. */
const MAX_ATTEMPTS = 3;

interface Delivery {
  webhookId: string;
  type: string;
  jobId: string;
  status: string;
}

/** A webhook receiver on loopback that records every complete delivery and answers 200. */
async function startReceiver() {
  const deliveries: Delivery[] = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    // A send cut by the kill ends in an aborted request: not a delivery, and no reason to crash.
    req.on('error', () => undefined);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; data: { id: string; status: string } };
      deliveries.push({ webhookId: String(req.headers['webhook-id']), type: payload.type, jobId: payload.data.id, status: payload.data.status });
      res.writeHead(200).end();
      events.emit('delivery');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    /** Resolves once `check()` holds, looking again after each delivery. */
    until(check: () => boolean): Promise<void> {
      return new Promise((resolve) => {
        const look = () => {
          if (!check()) return;
          events.off('delivery', look);
          resolve();
        };
        events.on('delivery', look);
        look();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port free right now; both runs listen on it so the image URLs of the first stay valid. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface ServerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
}

/**
 * src/main.ts under tsx's loader, resolved once its log says "server ready". `node --import tsx`
 * rather than the `tsx` binary: that one runs the server in a child process and can relay SIGTERM
 * but not SIGKILL, which would kill the wrapper and leave the server running.
 */
async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('"msg":"server ready"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before it was ready:\n${out.slice(-3000)}`)));
  });
  return { child, exited, log: () => out };
}

/** The JSON log lines of a run with this message. */
function logLines(log: string, msg: string): any[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === msg);
}

/** Every file under `dir` (relative paths); none when it does not exist. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).map((f) => f.split(path.sep).join('/'));
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A hang guard, not a timing assertion: a job that never ends (stuck queued or running) fails the
 * test with the jobs' states instead of a bare test timeout.
 */
async function unlessStuck<T>(waiting: Promise<T>, describe: () => Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => void describe().then((d) => reject(new Error(`still waiting after ${HANG_GUARD_MS} ms: ${d}`)), reject), HANG_GUARD_MS);
  });
  try {
    return await Promise.race([waiting, stuck]);
  } finally {
    clearTimeout(timer);
  }
}
const HANG_GUARD_MS = 90_000;

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

test('SIGKILL mid-queue: after a restart every job ends, is charged once, leaves no orphans, and reaches its webhook', { timeout: 180_000 }, async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-crash-'));
  cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const receiver = await startReceiver();
  cleanups.push(() => receiver.close());
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    API_KEYS: TEST_KEY,
    BUILTIN_MODEL_DIR: TINY_MODEL_DIR,
    ORT_THREADS: '1',
    ENGINE_CONCURRENCY: '1',
    ENGINE_MAX_QUEUE: '100',
    WEBHOOK_ALLOW_PRIVATE_URLS: '1',
    WEBHOOK_RETRY_BASE_MS: '50',
    JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    LOG_LEVEL: 'info',
  };
  const processes: ServerProcess[] = [];
  cleanups.push(() => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  const call = async (method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + pathname, {
      method,
      headers: { authorization: `Bearer ${TEST_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  // A small reference on every fifth job from the second (the one running at the kill): the sweep at
  // restart must keep the references of jobs still to run and the runner delete them once they end.
  const reference = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#4080c0' } }).png().toBuffer();
  const bodies = Array.from({ length: JOBS }, (_, i) => ({
    model: MODEL,
    prompt: i % 2 ? 'a red ball on a blue box' : 'a green tree by a house',
    image_size: 'square',
    enhance_prompt: false,
    // The first job is inline, so the one running at the kill (the second) is a url job: its image is served after the re-run.
    response_format: i % 2 ? 'url' : 'b64_json',
    ...(i % 5 === 1 ? { image_urls: [`data:image/png;base64,${reference.toString('base64')}`] } : {}),
    webhook: { url: receiver.url },
  }));

  // ---------------------------------------------------------------- first run, killed mid-queue
  const first = await startServerProcess(env);
  processes.push(first);
  // No seed given: the server picks one at submit, and a re-run must draw with that same one.
  const ids: string[] = [];
  const seedAtSubmit = new Map<string, number>();
  for (const body of bodies) {
    const res = await call('POST', '/v1/images/generations', body, { prefer: 'respond-async' });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    ids.push(res.json.id);
    seedAtSubmit.set(res.json.id, res.json.input.seed);
  }
  const bodyOf = new Map(ids.map((id, i) => [id, bodies[i]!]));
  const describeJobs = async () => {
    const states = await Promise.all(ids.map(async (id) => `${id.slice(4, 12)}:${(await call('GET', `/v1/jobs/${id}`)).json.status}`));
    return `${states.join(' ')}; ${receiver.deliveries.length} webhook deliveries`;
  };
  await unlessStuck(receiver.until(() => receiver.deliveries.some((d) => d.type === 'job.succeeded')), describeJobs);
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');

  // What the kill left, read from the file while no process has it open.
  const atKill = new Database(path.join(dataDir, 'server.sqlite'), { readonly: true, fileMustExist: true });
  const statusAtKill = new Map((atKill.prepare(`SELECT id, status FROM jobs`).all() as Array<{ id: string; status: string }>).map((r) => [r.id, r.status]));
  atKill.close();
  const countAtKill = (status: string) => [...statusAtKill.values()].filter((s) => s === status).length;
  const runningAtKill = ids.filter((id) => statusAtKill.get(id) === 'running');
  t.diagnostic(`at the kill: ${countAtKill('succeeded')} succeeded, ${runningAtKill.length} running, ${countAtKill('queued')} queued`);
  assert.equal(statusAtKill.size, JOBS);
  assert.ok(countAtKill('succeeded') >= 1 && countAtKill('succeeded') < JOBS, 'the kill landed mid-way');

  // What a kill at another moment leaves, which this one cannot be timed to hit: an image stored but
  // never committed, a half-written one, the reference of a submit that died before writing its job.
  const images = path.join(dataDir, 'images');
  const planted = [`generations/${Date.now()}-${crypto.randomUUID()}.png`, `generations/${Date.now()}-${crypto.randomUUID()}.png.999.tmp`, `inputs/job_${crypto.randomUUID()}-0.rgb`];
  for (const key of planted) {
    fs.mkdirSync(path.dirname(path.join(images, key)), { recursive: true });
    fs.writeFileSync(path.join(images, key), PNG_SIGNATURE);
  }

  // ---------------------------------------------------------------- restart on the same DATA_DIR
  const second = await startServerProcess(env);
  processes.push(second);
  const terminalEvents = new Set(['job.succeeded', 'job.failed']);
  await unlessStuck(
    receiver.until(() => ids.every((id) => receiver.deliveries.some((d) => d.jobId === id && terminalEvents.has(d.type)))),
    describeJobs,
  );

  const recovered = logLines(second.log(), 'recovered jobs after a restart')[0];
  assert.ok(recovered, 'the restart logged its recovery');
  assert.equal(recovered.requeued + recovered.failed, runningAtKill.length, 'recovery saw the jobs the kill left running');
  assert.ok(recovered.orphansDeleted >= planted.length, `orphans deleted: ${recovered.orphansDeleted}`);

  const jobs = new Map<string, any>();
  for (const id of ids) {
    const res = await call('GET', `/v1/jobs/${id}`);
    assert.equal(res.status, 200);
    jobs.set(id, res.json);
  }
  const succeeded = ids.filter((id) => jobs.get(id).status === 'succeeded');
  const failed = ids.filter((id) => jobs.get(id).status === 'failed');
  t.diagnostic(`after the restart: ${succeeded.length} succeeded, ${failed.length} failed`);
  assert.equal(succeeded.length + failed.length, JOBS, `every job ended: ${ids.map((id) => jobs.get(id).status).join(',')}`);
  // Only a job interrupted more often than JOB_MAX_ATTEMPTS allows may fail, and then as interrupted.
  assert.deepEqual(failed, MAX_ATTEMPTS > 1 ? [] : runningAtKill, 'failed jobs');
  for (const id of failed) assert.equal(jobs.get(id).error.code, 'job_interrupted');

  // A job the kill interrupted ran again (unless JOB_MAX_ATTEMPTS said no more); every other ran once.
  for (const id of ids) {
    const reran = runningAtKill.includes(id) && jobs.get(id).status === 'succeeded';
    assert.equal(jobs.get(id).attempts, reran ? 2 : 1, `attempts of ${id}`);
  }
  if (runningAtKill.length === 0) t.diagnostic('no job was running at the kill: the re-run checks were skipped');

  // Every succeeded image is there: url jobs served as PNG, b64 jobs carried inline.
  const servedKeys = new Set<string>();
  for (const id of succeeded) {
    const item = jobs.get(id).result.data[0];
    assert.equal(item.seed, seedAtSubmit.get(id), 'the seed chosen at submit is the one drawn');
    if (bodyOf.get(id)!.response_format === 'url') {
      const res = await fetch(item.url);
      assert.equal(res.status, 200, item.url);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.ok(Buffer.from(await res.arrayBuffer()).subarray(0, 8).equals(PNG_SIGNATURE));
      servedKeys.add(new URL(item.url).pathname.replace(/^\/files\//, ''));
    } else {
      assert.ok(Buffer.from(item.b64_json, 'base64').subarray(0, 8).equals(PNG_SIGNATURE));
    }
  }

  // A re-run draws what a fresh request with the same parameters draws (the seed was fixed at submit).
  for (const id of runningAtKill.filter((j) => succeeded.includes(j))) {
    const item = jobs.get(id).result.data[0];
    const png = item.url ? Buffer.from(await (await fetch(item.url)).arrayBuffer()) : Buffer.from(item.b64_json, 'base64');
    const { webhook: _webhook, ...params } = bodyOf.get(id)!;
    const fresh = await call('POST', '/v1/images/generations', { ...params, seed: seedAtSubmit.get(id), response_format: 'b64_json' });
    assert.equal(fresh.status, 200);
    const [a, b] = await Promise.all([png, Buffer.from(fresh.json.data[0].b64_json, 'base64')].map((p) => sharp(p).raw().toBuffer()));
    assert.ok(a!.equals(b!), `job ${id}, run again after the kill, has the pixels of a fresh run`);
  }

  // Every job reached its webhook with its final state; a repeated webhook-id is the same message.
  const byWebhookId = new Map<string, Delivery>();
  for (const d of receiver.deliveries) {
    const seen = byWebhookId.get(d.webhookId);
    if (seen) assert.deepEqual([d.jobId, d.type], [seen.jobId, seen.type], `webhook-id ${d.webhookId} reused for another message`);
    byWebhookId.set(d.webhookId, d);
    assert.match(d.webhookId, /^msg_[0-9a-f-]{36}$/);
  }
  for (const id of ids) {
    const terminal = [...byWebhookId.values()].filter((d) => d.jobId === id && terminalEvents.has(d.type));
    assert.equal(terminal.length, 1, `one terminal message for ${id}`);
    assert.equal(terminal[0]!.type, `job.${jobs.get(id).status}`);
  }
  t.diagnostic(`webhooks: ${receiver.deliveries.length} deliveries of ${byWebhookId.size} messages`);

  // ---------------------------------------------------------------- stop, then read what is on disk
  second.child.kill('SIGTERM');
  assert.equal((await second.exited).code, 0, second.log().slice(-2000));

  const db = new Database(path.join(dataDir, 'server.sqlite'), { readonly: true, fileMustExist: true });
  const ledger = new Map((db.prepare(`SELECT job_id, COUNT(*) AS n FROM usage_ledger WHERE job_id IS NOT NULL GROUP BY job_id`).all() as Array<{ job_id: string; n: number }>).map((r) => [r.job_id, r.n]));
  db.close();
  for (const id of succeeded) assert.equal(ledger.get(id), 1, `one ledger row for succeeded ${id}`);
  for (const id of failed) assert.equal(ledger.get(id), undefined, `no ledger row for failed ${id}`);

  assert.deepEqual(filesUnder(path.join(images, 'generations')).map((f) => `generations/${f}`).sort(), [...servedKeys].sort(), 'no image that no job points to');
  assert.deepEqual(filesUnder(path.join(images, 'inputs')), [], 'no reference left once its job ended');
});
