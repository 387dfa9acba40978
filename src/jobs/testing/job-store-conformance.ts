/**
 * The conformance suite every JobStore + JobQueue pair passes: the embedded SQLite one now, the
 * Redis/Postgres ones of the scale-out work later. Usage, in a *.test.ts file:
 *   runJobStoreConformance('sqlite', async () => ({ store, queue, outbox, ledgerRowsFor, teardown }));
 * `setup` runs before each test, so every test starts from an empty store.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JobParams, JobWebhook, NewJob } from '../../domain/jobs.ts';
import type { UsageEntry } from '../../domain/ports.ts';
import type { JobQueue, JobStore, SucceedJob, WebhookOutbox } from '../ports.ts';

export interface JobStoreSetup {
  store: JobStore;
  queue: JobQueue;
  outbox: WebhookOutbox;
  /** Ledger rows written for a job (the suite checks exactly-once charging). */
  ledgerRowsFor(jobId: string): Promise<number>;
  teardown(): Promise<void>;
}

const MODEL = 'alibaba/qwen-image-2-0';

function params(overrides: Partial<JobParams> = {}): JobParams {
  return {
    model: MODEL,
    prompt: 'a red house',
    negativePrompt: '',
    width: 512,
    height: 512,
    seed: 7,
    enhancePrompt: false,
    watermark: false,
    responseFormat: 'url',
    referenceKeys: [],
    ...overrides,
  };
}

let clock = 1_800_000_000_000;
function newJob(keyId = 'key_a', webhook: JobWebhook | null = null, p: Partial<JobParams> = {}): NewJob {
  return { id: `job_${randomUUID()}`, keyId, requestId: `req_${randomUUID()}`, params: params(p), webhook, createdAtMs: ++clock };
}

/** `attempt`: the run's (1: the first markRunning). */
function success(job: NewJob, outputKeys: string[] = [], attempt = 1): SucceedJob {
  const usage: UsageEntry = { keyId: job.keyId, requestId: job.requestId, model: MODEL, width: 512, height: 512, seed: 7, credits: 91000, usd: 0.0455, createdAtMs: clock };
  return {
    attempt,
    result: { created: clock, data: [{ url: 'http://x/files/a.png', seed: 7, revised_prompt: 'a red house' }], meta: { usage: { credits_used: 91000, usd_spent: 0.0455 } } },
    outputKeys,
    usage,
    timings: { engine_ms: 12 },
    completedAtMs: ++clock,
  };
}

const failure = { status: 502, error: { message: 'backend broke', type: 'server_error' as const, param: null, code: 'backend_error' as const } };

export function runJobStoreConformance(name: string, setup: () => Promise<JobStoreSetup>): void {
  describe(`JobStore conformance: ${name}`, () => {
    let s: JobStoreSetup;
    beforeEach(async () => {
      s = await setup();
    });
    afterEach(async () => {
      await s.teardown();
    });

    it('creates a queued job and reads it back unchanged', async () => {
      const job = newJob('key_a', { url: 'https://hooks.example/x', events: ['completed'] }, { referenceKeys: ['inputs/j/0.rgb'] });
      const out = await s.store.create(job);
      assert.equal(out.kind, 'created');
      const got = await s.store.get(job.id);
      assert.ok(got);
      assert.equal(got.status, 'queued');
      assert.deepEqual(got.params, job.params);
      assert.deepEqual(got.webhook, job.webhook);
      assert.equal(got.keyId, 'key_a');
      assert.equal(got.createdAtMs, job.createdAtMs);
      assert.equal(got.attempts, 0);
      assert.equal(got.startedAtMs, null);
      assert.equal(await s.store.get(`job_${randomUUID()}`), null);
    });

    it('idempotency: same key and body → the same job; another body → conflict; scoped per API key', async () => {
      const first = newJob('key_a');
      const claim = { keyId: 'key_a', key: 'k-1', bodyHash: 'h1' };
      assert.equal((await s.store.create(first, claim)).kind, 'created');
      const again = await s.store.create(newJob('key_a'), claim);
      assert.equal(again.kind, 'existing');
      assert.equal(again.kind === 'existing' && again.job.id, first.id);
      const other = await s.store.create(newJob('key_a'), { ...claim, bodyHash: 'h2' });
      assert.deepEqual(other, { kind: 'conflict', jobId: first.id });
      assert.equal((await s.store.create(newJob('key_b'), { ...claim, keyId: 'key_b' })).kind, 'created', 'another key may use the same Idempotency-Key');
      assert.deepEqual(await s.store.findIdempotent('key_a', 'k-1'), { bodyHash: 'h1', jobId: first.id });
      assert.equal(await s.store.findIdempotent('key_a', 'nope'), null);
    });

    it('lists a key’s jobs newest first, in cursor pages, with a status filter', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const j = newJob('key_a');
        await s.store.create(j);
        ids.push(j.id);
      }
      await s.store.create(newJob('key_b'));
      const p1 = await s.store.list({ keyId: 'key_a', limit: 2 });
      assert.deepEqual(p1.jobs.map((j) => j.id), [ids[4], ids[3]]);
      assert.ok(p1.nextCursor);
      const p2 = await s.store.list({ keyId: 'key_a', limit: 2, after: p1.nextCursor! });
      assert.deepEqual(p2.jobs.map((j) => j.id), [ids[2], ids[1]]);
      const p3 = await s.store.list({ keyId: 'key_a', limit: 2, after: p2.nextCursor! });
      assert.deepEqual(p3.jobs.map((j) => j.id), [ids[0]]);
      assert.equal(p3.nextCursor, null);
      await s.store.markRunning(ids[1]!, ++clock);
      await s.store.cancel(ids[1]!, ++clock);
      assert.deepEqual((await s.store.list({ keyId: 'key_a', limit: 10, status: 'canceled' })).jobs.map((j) => j.id), [ids[1]]);
      assert.deepEqual((await s.store.list({ keyId: 'key_a', limit: 10, after: 'garbage' })).jobs, []);
    });

    it('runs the state machine: queued → running → succeeded, with exactly one ledger row', async () => {
      const job = newJob();
      await s.store.create(job);
      const running = await s.store.markRunning(job.id, ++clock);
      assert.equal(running?.status, 'running');
      assert.equal(running?.attempts, 1);
      assert.equal(await s.store.markRunning(job.id, ++clock), null, 'only a queued job starts');
      assert.equal(await s.store.setProgress(job.id, { step: 3, steps: 8 }, 1), true);
      assert.deepEqual((await s.store.get(job.id))?.progress, { step: 3, steps: 8 });
      assert.equal(await s.store.succeed(job.id, success(job, ['generations/a.png'])), true);
      assert.equal(await s.store.succeed(job.id, success(job)), false, 'a second success is refused');
      const done = await s.store.get(job.id);
      assert.equal(done?.status, 'succeeded');
      assert.equal(done?.progress, null);
      assert.equal(done?.result?.meta.usage.credits_used, 91000);
      assert.deepEqual(done?.outputKeys, ['generations/a.png']);
      assert.equal(await s.ledgerRowsFor(job.id), 1);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 1), false, 'terminal states are final');
      assert.equal(await s.store.fail(job.id, failure, ++clock, null), false, 'for any attempt');
      assert.equal((await s.store.cancel(job.id, ++clock))?.status, 'succeeded');
      assert.ok((await s.store.listOutputKeys()).has('generations/a.png'));
    });

    it('a canceled job cannot succeed, and is never charged', async () => {
      const job = newJob();
      await s.store.create(job);
      await s.store.markRunning(job.id, ++clock);
      assert.equal((await s.store.cancel(job.id, ++clock))?.status, 'canceled');
      assert.equal(await s.store.succeed(job.id, success(job)), false);
      assert.equal(await s.ledgerRowsFor(job.id), 0);
      const queued = newJob();
      await s.store.create(queued);
      assert.equal((await s.store.cancel(queued.id, ++clock))?.status, 'canceled');
      assert.equal(await s.store.markRunning(queued.id, ++clock), null);
    });

    it('fails a job with its error and charges nothing; requeues an interrupted one', async () => {
      const job = newJob();
      await s.store.create(job);
      await s.store.markRunning(job.id, ++clock);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 1), true);
      const failed = await s.store.get(job.id);
      assert.deepEqual(failed?.error, failure);
      assert.equal(await s.ledgerRowsFor(job.id), 0);
      const other = newJob();
      await s.store.create(other);
      await s.store.markRunning(other.id, ++clock);
      assert.deepEqual((await s.store.listByStatus('running')).map((j) => j.id), [other.id]);
      assert.equal(await s.store.requeue(other.id), true);
      assert.equal((await s.store.get(other.id))?.status, 'queued');
      assert.equal((await s.store.markRunning(other.id, ++clock))?.attempts, 2, 'a second run counts a second attempt');
    });

    it('reclaims a running job for another worker, counting an attempt; never a job that ended', async () => {
      const job = newJob();
      await s.store.create(job);
      assert.equal(await s.store.reclaim(job.id, ++clock), null, 'a queued job is not reclaimed');
      await s.store.markRunning(job.id, ++clock);
      const startedAt = ++clock;
      const again = await s.store.reclaim(job.id, startedAt);
      assert.equal(again?.status, 'running');
      assert.equal(again?.attempts, 2);
      assert.equal(again?.startedAtMs, startedAt);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 2), true);
      assert.equal(await s.store.reclaim(job.id, ++clock), null, 'a failed job stays failed');
    });

    it('fences a run\'s writes by its attempt: after a reclaim, the old attempt writes nothing and is never charged', async () => {
      const hook: JobWebhook = { url: 'https://hooks.example/all', events: ['completed'] };
      const job = newJob('key_a', hook);
      await s.store.create(job);
      assert.equal((await s.store.markRunning(job.id, ++clock))?.attempts, 1);
      assert.equal(await s.store.setProgress(job.id, { step: 2, steps: 8 }, 1), true);
      const reclaimed = await s.store.reclaim(job.id, ++clock);
      assert.equal(reclaimed?.attempts, 2);
      assert.equal(await s.store.setProgress(job.id, { step: 1, steps: 8 }, 2), true);
      const before = await s.store.get(job.id);

      // The first worker wakes (it was frozen, not dead) and writes under its attempt, 1.
      assert.equal(await s.store.setProgress(job.id, { step: 7, steps: 8 }, 1), false, 'old progress is refused');
      assert.equal(await s.store.fail(job.id, failure, ++clock, 1), false, 'old failure is refused');
      assert.equal(await s.store.succeed(job.id, success(job, ['generations/old.png'], 1)), false, 'old success is refused');
      assert.deepEqual(await s.store.get(job.id), before, 'status, progress, outputs and result unchanged');
      assert.equal((await s.store.get(job.id))?.status, 'running');
      assert.deepEqual((await s.store.get(job.id))?.progress, { step: 1, steps: 8 });
      assert.equal(await s.ledgerRowsFor(job.id), 0, 'no ledger row for the old attempt');
      assert.equal((await s.outbox.listForJob(job.id)).length, 0, 'no webhook delivery either');
      assert.equal((await s.store.listOutputKeys()).has('generations/old.png'), false);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 3), false, 'nor a later attempt than the job\'s');

      // The current attempt commits, once.
      assert.equal(await s.store.succeed(job.id, success(job, ['generations/new.png'], 2)), true);
      assert.equal(await s.store.succeed(job.id, success(job, ['generations/new.png'], 2)), false, 'a second success is refused');
      assert.equal(await s.store.succeed(job.id, success(job, ['generations/old.png'], 1)), false);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 1), false);
      assert.equal(await s.store.setProgress(job.id, { step: 8, steps: 8 }, 2), false, 'no progress once ended');
      const done = await s.store.get(job.id);
      assert.equal(done?.status, 'succeeded');
      assert.deepEqual(done?.outputKeys, ['generations/new.png']);
      assert.equal(done?.progress, null);
      assert.equal(await s.ledgerRowsFor(job.id), 1, 'charged exactly once');
      assert.deepEqual((await s.outbox.listForJob(job.id)).map((d) => d.eventType), ['job.succeeded']);
    });

    it('fences a failure by its attempt: the old attempt\'s is refused, the current one\'s fails the job; null fails any', async () => {
      const job = newJob();
      await s.store.create(job);
      await s.store.markRunning(job.id, ++clock);
      await s.store.reclaim(job.id, ++clock);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 1), false);
      assert.equal((await s.store.get(job.id))?.status, 'running');
      assert.equal((await s.store.get(job.id))?.error, null);
      assert.equal(await s.store.fail(job.id, failure, ++clock, 2), true);
      assert.deepEqual((await s.store.get(job.id))?.error, failure);
      assert.equal(await s.store.succeed(job.id, success(job, [], 2)), false, 'a failed job stays failed');
      assert.equal(await s.ledgerRowsFor(job.id), 0);

      // A failure decided outside any run (the synchronous deadline) applies to any attempt, and to a queued job.
      const reclaimed = newJob();
      await s.store.create(reclaimed);
      await s.store.markRunning(reclaimed.id, ++clock);
      await s.store.reclaim(reclaimed.id, ++clock);
      assert.equal(await s.store.fail(reclaimed.id, failure, ++clock, null), true);
      assert.equal((await s.store.get(reclaimed.id))?.status, 'failed');
      const queued = newJob();
      await s.store.create(queued);
      assert.equal(await s.store.fail(queued.id, failure, ++clock, 0), false, 'a run\'s failure needs the job running');
      assert.equal(await s.store.fail(queued.id, failure, ++clock, null), true);
      assert.equal((await s.store.get(queued.id))?.status, 'failed');
    });

    it('writes a webhook delivery with the state change it announces, only for subscribed events', async () => {
      const hook: JobWebhook = { url: 'https://hooks.example/done', events: ['completed'] };
      const job = newJob('key_a', hook);
      await s.store.create(job);
      await s.store.markRunning(job.id, ++clock);
      assert.equal((await s.outbox.listForJob(job.id)).length, 0, 'running is not subscribed');
      await s.store.succeed(job.id, success(job));
      const deliveries = await s.outbox.listForJob(job.id);
      assert.equal(deliveries.length, 1);
      assert.equal(deliveries[0]!.eventType, 'job.succeeded');
      assert.equal(deliveries[0]!.url, hook.url);
      assert.equal(deliveries[0]!.status, 'pending');
      assert.match(deliveries[0]!.id, /^msg_/);
      const watchStart = newJob('key_a', { url: 'https://hooks.example/run', events: ['running', 'failed'] });
      await s.store.create(watchStart);
      await s.store.markRunning(watchStart.id, ++clock);
      await s.store.cancel(watchStart.id, ++clock);
      assert.deepEqual((await s.outbox.listForJob(watchStart.id)).map((d) => d.eventType), ['job.running']);
      const none = newJob();
      await s.store.create(none);
      await s.store.cancel(none.id, ++clock);
      assert.equal((await s.outbox.listForJob(none.id)).length, 0);
    });

    it('deletes expired terminal jobs and their idempotency records, keeps the ledger and live jobs', async () => {
      const old = newJob();
      await s.store.create(old, { keyId: old.keyId, key: 'old', bodyHash: 'h' });
      await s.store.markRunning(old.id, ++clock);
      await s.store.succeed(old.id, success(old, ['generations/old.png']));
      const live = newJob();
      await s.store.create(live);
      const cutoff = ++clock;
      const deleted = await s.store.deleteCompletedBefore(cutoff, 100);
      assert.deepEqual(deleted.map((j) => j.id), [old.id]);
      assert.deepEqual(deleted[0]!.outputKeys, ['generations/old.png']);
      assert.equal(await s.store.get(old.id), null);
      assert.equal(await s.store.findIdempotent(old.keyId, 'old'), null);
      assert.equal(await s.ledgerRowsFor(old.id), 1, 'the ledger loses nothing');
      assert.ok(await s.store.get(live.id));
      assert.ok(!(await s.store.listOutputKeys()).has('generations/old.png'));
    });

    it('concurrency: idempotent creates with one key make one job; one start and one success win', async () => {
      const claim = { keyId: 'key_c', key: 'same-key', bodyHash: 'h' };
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => s.store.create(newJob('key_c'), claim)));
      const created = outcomes.filter((o) => o.kind === 'created');
      assert.equal(created.length, 1, `one created, got ${outcomes.map((o) => o.kind).join(', ')}`);
      const id = created[0]!.kind === 'created' ? created[0]!.job.id : '';
      assert.ok(outcomes.every((o) => o.kind !== 'conflict' && o.job.id === id), 'the others answer with that job');
      assert.equal((await s.store.list({ keyId: 'key_c', limit: 10 })).jobs.length, 1);

      const starts = await Promise.all([1, 2, 3].map(() => s.store.markRunning(id, ++clock)));
      assert.equal(starts.filter((r) => r !== null).length, 1, 'one worker starts it');
      const job = (await s.store.get(id))!;
      const asNew: NewJob = { id, keyId: job.keyId, requestId: job.requestId, params: job.params, webhook: null, createdAtMs: job.createdAtMs };
      const wins = await Promise.all([1, 2, 3].map(() => s.store.succeed(id, success(asNew))));
      assert.deepEqual(wins.filter(Boolean), [true], 'one success commits');
      assert.equal(await s.ledgerRowsFor(id), 1, 'charged once');
    });

    it('concurrency: a cancel racing a success leaves one terminal state, charged only if it succeeded', async () => {
      const job = newJob();
      await s.store.create(job);
      await s.store.markRunning(job.id, ++clock);
      const [succeeded, canceled] = await Promise.all([s.store.succeed(job.id, success(job)), s.store.cancel(job.id, ++clock)]);
      const final = (await s.store.get(job.id))!;
      assert.equal(final.status, succeeded ? 'succeeded' : 'canceled');
      assert.equal(canceled?.status, final.status);
      assert.equal(await s.ledgerRowsFor(job.id), succeeded ? 1 : 0);
    });

    it('queue: FIFO per model, claim, remove, position, depth', async () => {
      await s.queue.enqueue('job_1', MODEL);
      await s.queue.enqueue('job_2', 'other/model');
      await s.queue.enqueue('job_3', MODEL);
      await s.queue.enqueue('job_4', MODEL);
      await s.queue.enqueue('job_1', MODEL); // enqueueing twice keeps one entry
      assert.equal(await s.queue.depth(MODEL), 3);
      assert.equal(await s.queue.position('job_4'), 2);
      assert.equal(await s.queue.position('job_2'), 0);
      assert.deepEqual(await s.queue.list(MODEL), ['job_1', 'job_3', 'job_4']);
      assert.equal(await s.queue.claim(MODEL), 'job_1');
      assert.equal(await s.queue.remove('job_3'), true);
      assert.equal(await s.queue.remove('job_3'), false);
      assert.equal(await s.queue.position('job_4'), 0);
      assert.equal(await s.queue.has('job_1'), false);
      assert.equal(await s.queue.has('job_4'), true);
      assert.equal(await s.queue.claim(MODEL), 'job_4');
      assert.equal(await s.queue.claim(MODEL), null);
      assert.equal(await s.queue.position('job_1'), null);
      assert.equal(await s.queue.claim('other/model'), 'job_2');
    });
  });
}
