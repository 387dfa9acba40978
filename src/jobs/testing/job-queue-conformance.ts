/**
 * The conformance suite every JobQueue passes: the embedded SQLite queue and BullMQ on a real Redis.
 * Usage, in a *.test.ts file:
 *   runJobQueueConformance('bullmq', async () => ({ open: async () => queue, teardown }));
 * `open()` gives another handle on the same storage, as a second process would have (a second SQLite
 * connection to the same file, a second BullMQ client on the same Redis); `setup` runs before each test,
 * so every test starts from an empty queue.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JobQueue } from '../ports.ts';

export interface JobQueueSetup {
  /** A handle on the queue's shared storage; every call gives a new one. */
  open(): Promise<JobQueue>;
  teardown(): Promise<void>;
}

const MODEL = 'alibaba/qwen-image-2-0';
const OTHER = 'other/model';

const newId = () => `job_${randomUUID()}`;

export function runJobQueueConformance(name: string, setup: () => Promise<JobQueueSetup>): void {
  describe(`JobQueue conformance: ${name}`, () => {
    let s: JobQueueSetup;
    let q: JobQueue;
    beforeEach(async () => {
      s = await setup();
      q = await s.open();
    });
    afterEach(async () => {
      await s.teardown();
    });

    it('is FIFO per model, with positions, listing, depth and membership', async () => {
      const [a, b, c, d] = [newId(), newId(), newId(), newId()];
      await q.enqueue(a, MODEL);
      await q.enqueue(b, OTHER);
      await q.enqueue(c, MODEL);
      await q.enqueue(d, MODEL);
      await q.enqueue(a, MODEL); // enqueueing twice keeps one entry
      assert.equal(await q.depth(MODEL), 3);
      assert.equal(await q.depth(OTHER), 1);
      assert.deepEqual(await q.list(MODEL), [a, c, d]);
      assert.equal(await q.position(a), 0);
      assert.equal(await q.position(d), 2);
      assert.equal(await q.position(b), 0, 'positions count within the model');
      assert.equal(await q.position(newId()), null);
      assert.equal(await q.has(c), true);
      assert.equal(await q.has(newId()), false);

      assert.equal(await q.claim(MODEL), a);
      assert.equal(await q.has(a), false, 'a claimed job is no longer queued');
      assert.equal(await q.position(a), null);
      assert.equal(await q.position(d), 1);
      assert.equal(await q.depth(MODEL), 2);
      await q.complete(a);

      assert.equal(await q.claim(MODEL), c);
      assert.equal(await q.claim(MODEL), d);
      assert.equal(await q.claim(MODEL), null);
      assert.equal(await q.claim(OTHER), b);
      assert.equal(await q.claim(OTHER), null);
      assert.deepEqual(await q.list(MODEL), []);
    });

    it('removes a waiting job (cancel), but not a claimed or unknown one', async () => {
      const [a, b, c] = [newId(), newId(), newId()];
      for (const id of [a, b, c]) await q.enqueue(id, MODEL);
      assert.equal(await q.remove(b), true);
      assert.equal(await q.remove(b), false);
      assert.equal(await q.remove(newId()), false);
      assert.deepEqual(await q.list(MODEL), [a, c]);
      assert.equal(await q.position(c), 1);
      assert.equal(await q.claim(MODEL), a);
      assert.equal(await q.remove(a), false, 'a claimed job is the runner\'s to end, not the queue\'s');
      await q.complete(a);
      assert.equal(await q.claim(MODEL), c);
      await q.complete(c);
      assert.equal(await q.claim(MODEL), null);
    });

    it('keeps model ids with separators apart (BullMQ forbids ":" in queue names)', async () => {
      const models = ['a:b', 'a/b', 'a_2fb', 'модель'];
      const ids = models.map(() => newId());
      for (const [i, model] of models.entries()) await q.enqueue(ids[i]!, model);
      for (const [i, model] of models.entries()) {
        assert.equal(await q.depth(model), 1, model);
        assert.equal(await q.claim(model), ids[i], model);
        await q.complete(ids[i]!);
      }
    });

    it('a job enqueued through one handle is claimed through another, once', async () => {
      const other = await s.open();
      const id = newId();
      await q.enqueue(id, MODEL);
      assert.equal(await other.has(id), true);
      assert.equal(await other.position(id), 0);
      assert.equal(await other.claim(MODEL), id);
      assert.equal(await q.claim(MODEL), null);
      await other.complete(id);
    });

    it('two claimers racing for the same jobs never both get one', async () => {
      const other = await s.open();
      const ids = Array.from({ length: 20 }, newId);
      for (const id of ids) await q.enqueue(id, MODEL);
      const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? q : other).claim(MODEL)));
      const got = claims.filter((id): id is string => id !== null);
      assert.equal(got.length, ids.length, 'every job was handed out');
      assert.equal(new Set(got).size, got.length, 'no job was handed out twice');
      assert.deepEqual(new Set(got), new Set(ids));
      assert.equal(await q.depth(MODEL), 0);
      for (const [i, id] of claims.entries()) if (id) await (i % 2 === 0 ? q : other).complete(id);
    });

    it('complete of a claimed job lets the next one through and is harmless twice', async () => {
      const [a, b] = [newId(), newId()];
      await q.enqueue(a, MODEL);
      await q.enqueue(b, MODEL);
      assert.equal(await q.claim(MODEL), a);
      await q.complete(a);
      await q.complete(a);
      assert.equal(await q.has(a), false);
      assert.equal(await q.claim(MODEL), b);
      await q.complete(b);
      // A job may be queued again after it ended (JobRunner.recover after a crash requeues from the store).
      await q.enqueue(a, MODEL);
      assert.equal(await q.claim(MODEL), a);
      await q.complete(a);
    });
  });
}
