/**
 * The conformance suite both stores pass (SQLite file, Postgres database), through openStores so the factory is
 * what is tested: keys, env key sync, webhook settings, usage totals, the ledger as the job store writes it
 * (whole credits, micro-USD), the mark ledger, the prompt cache and the per-key limit figures. Concurrency
 * cases use Promise.all: on SQLite they run one after another (one synchronous connection), on Postgres they
 * are real concurrent transactions on several pooled connections. Usage, in a *.test.ts file:
 *   runStoreConformance('postgres', async () => ({ stores: await openStores(...), teardown }));
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JobWebhook, NewJob } from '../../domain/jobs.ts';
import type { Stores } from '../open-stores.ts';

export interface StoreSetup {
  stores: Stores;
  teardown(): Promise<void>;
}

const MODEL = 'alibaba/qwen-image-2-0';
const OTHER_MODEL = 'other/model';

let clock = 1_900_000_000_000;

function newJob(keyId: string, model = MODEL, webhook: JobWebhook | null = null): NewJob {
  return {
    id: `job_${randomUUID()}`,
    keyId,
    requestId: `req_${randomUUID()}`,
    params: { model, prompt: 'a lighthouse', negativePrompt: '', width: 640, height: 512, seed: 99, enhancePrompt: false, watermark: true, responseFormat: 'url', referenceKeys: [] },
    webhook,
    createdAtMs: ++clock,
  };
}

export function runStoreConformance(name: string, setup: () => Promise<StoreSetup>): void {
  describe(`Store conformance: ${name}`, () => {
    let s: StoreSetup;
    beforeEach(async () => {
      s = await setup();
    });
    afterEach(async () => {
      await s.teardown();
    });

    /** A job of `keyId` run to success through the job store, charging `usd` (credits follow at 2 per micro-USD). */
    async function charge(keyId: string, usd: number, credits: number, model = MODEL, mark: { issuerId: number; generationId: number } | null = null, atMs = ++clock): Promise<string> {
      const job = newJob(keyId, model);
      await s.stores.jobStore.create(job);
      const running = await s.stores.jobStore.markRunning(job.id, atMs);
      const ok = await s.stores.jobStore.succeed(job.id, {
        attempt: running!.attempts,
        result: { created: atMs, data: [{ url: 'http://x/files/a.png', seed: 99, revised_prompt: 'a lighthouse' }], meta: { usage: { credits_used: credits, usd_spent: usd } } },
        outputKeys: [],
        usage: { keyId, requestId: job.requestId, model, width: 640, height: 512, seed: 99, credits, usd, createdAtMs: atMs, watermark: mark },
        timings: {},
        completedAtMs: atMs,
      });
      assert.equal(ok, true);
      return job.id;
    }

    it('keys: create, verify, list, get, update, revoke; a duplicate secret is refused', async () => {
      const { keys } = s.stores;
      const made = await keys.create('ci', 'cli');
      assert.match(made.secret, /^qis_/);
      assert.equal(made.record.prefix, made.secret.slice(0, 8));
      assert.equal((await keys.verify(made.secret))?.id, made.record.id);
      assert.equal(await keys.verify('qis_not-a-key'), null);
      const chosen = await keys.create('chosen', 'cli', 'operator-chosen-secret', { role: 'admin', limits: { daily_credits: 5000, requests_per_minute: null } });
      assert.equal(chosen.record.prefix, '', 'nothing of a chosen secret is shown');
      await assert.rejects(keys.create('again', 'cli', 'operator-chosen-secret'), /already exists/);
      const got = await keys.get(chosen.record.id);
      assert.equal(got?.role, 'admin');
      assert.deepEqual(got?.limits, { requests_per_minute: null, max_concurrent_jobs: 'default', daily_credits: 5000, monthly_credits: 'default' });
      assert.deepEqual((await keys.list()).map((k) => k.id).sort(), [made.record.id, chosen.record.id].sort());
      const updated = await keys.update(chosen.record.id, { name: 'renamed', role: 'user', limits: { daily_credits: 'default', max_concurrent_jobs: 2 } });
      assert.equal(updated?.name, 'renamed');
      assert.equal(updated?.role, 'user');
      assert.deepEqual(updated?.limits, { requests_per_minute: null, max_concurrent_jobs: 2, daily_credits: 'default', monthly_credits: 'default' });
      assert.equal(await keys.update('key_missing', { name: 'x' }), null);
      assert.equal(await keys.revoke(made.record.id), true);
      assert.equal(await keys.revoke(made.record.id), false, 'already revoked by the operator');
      assert.equal(await keys.verify(made.secret), null);
      assert.equal((await keys.get(made.record.id))?.revokedBy, 'cli');
      assert.equal(await keys.get('key_missing'), null);
    });

    it('env keys: synced from the lists, roles follow ADMIN_API_KEYS, operator revocations stay', async () => {
      const { keys } = s.stores;
      await s.stores.syncEnvKeys(['env-secret-one', 'env-secret-two'], ['env-secret-two', 'env-admin-only']);
      const byName = async () => new Map((await keys.list()).map((k) => [k.name, k]));
      let listed = await byName();
      assert.deepEqual([...listed.keys()].sort(), ['ADMIN_API_KEYS[1]', 'API_KEYS[0]', 'API_KEYS[1]']);
      assert.equal(listed.get('API_KEYS[1]')?.role, 'admin', 'a secret in both lists is an admin');
      assert.equal(listed.get('API_KEYS[0]')?.role, 'user');
      assert.match(listed.get('API_KEYS[0]')!.id, /^key_env_[0-9a-f]{12}$/);
      assert.equal(listed.get('API_KEYS[0]')!.prefix, '');
      const firstId = listed.get('API_KEYS[0]')!.id;
      await assert.rejects(keys.update(firstId, { role: 'admin' }), /ADMIN_API_KEYS/);

      await s.stores.syncEnvKeys(['env-secret-one', 'env-secret-two'], []); // a restart with fewer admins
      assert.equal((await byName()).get('API_KEYS[1]')?.role, 'user');
      assert.equal(await keys.verify('env-admin-only'), null, 'it left the lists: revoked');
      await s.stores.syncEnvKeys(['env-secret-one', 'env-secret-two'], ['env-admin-only']); // …and comes back
      assert.equal((await keys.verify('env-admin-only'))?.role, 'admin');

      assert.equal(await keys.revoke(firstId), true);
      await s.stores.syncEnvKeys(['env-secret-one', 'env-secret-two'], ['env-admin-only']);
      assert.equal(await keys.verify('env-secret-one'), null, 'the operator revoked it: listing it again does not revive it');
      listed = await byName();
      assert.equal(listed.get('API_KEYS[0]')?.id, firstId, 'restarts keep an env key’s id');
      assert.equal(listed.size, 3);
    });

    it('concurrent env key syncs (two processes starting) leave one row per key', async () => {
      await Promise.all([1, 2, 3].map(() => s.stores.syncEnvKeys(['env-secret-one'], ['env-admin'])));
      const list = await s.stores.keys.list();
      assert.deepEqual(list.map((k) => k.name).sort(), ['ADMIN_API_KEYS[0]', 'API_KEYS[0]']);
      assert.ok(list.every((k) => k.revokedAtMs === null));
    });

    it('webhook settings: default webhook, rotate, and concurrent ensureWebhookSecret agree on one secret', async () => {
      const { keys } = s.stores;
      const { record } = await keys.create('hooks', 'cli');
      assert.deepEqual(await keys.webhookSettings(record.id), { url: null, events: [], hasSecret: false });
      assert.equal(await keys.webhookSecret(record.id), null);
      await keys.setDefaultWebhook(record.id, { url: 'https://hooks.example/a', events: ['succeeded', 'failed'] });
      assert.deepEqual(await keys.webhookSettings(record.id), { url: 'https://hooks.example/a', events: ['succeeded', 'failed'], hasSecret: false });
      const secrets = await Promise.all(Array.from({ length: 6 }, () => keys.ensureWebhookSecret(record.id)));
      assert.equal(new Set(secrets).size, 1, `one secret, got ${secrets.join(', ')}`);
      assert.match(secrets[0]!, /^whsec_/);
      assert.equal(await keys.webhookSecret(record.id), secrets[0]);
      const rotated = await keys.rotateWebhookSecret(record.id);
      assert.notEqual(rotated, secrets[0]);
      assert.equal(await keys.ensureWebhookSecret(record.id), rotated);
      await keys.setDefaultWebhook(record.id, null);
      assert.deepEqual(await keys.webhookSettings(record.id), { url: null, events: [], hasSecret: true });
      await assert.rejects(keys.setDefaultWebhook('key_missing', null), /unknown API key/);
      await assert.rejects(keys.ensureWebhookSecret('key_missing'), /unknown API key/);
      assert.deepEqual(await keys.webhookSettings('key_missing'), { url: null, events: [], hasSecret: false });
    });

    it('usage totals: exact sums of whole credits and micro-USD, per model, per key', async () => {
      for (let i = 0; i < 3; i++) await charge('key_a', 0.0455, 91000);
      await charge('key_a', 0.1, 200000, OTHER_MODEL);
      await charge('key_a', 0.2, 400000, OTHER_MODEL);
      await charge('key_b', 0.0455, 91000);
      const totals = await s.stores.usage.totals('key_a');
      // In floating point 3 × 0.0455 is 0.13650000000000001 and 0.1 + 0.2 is 0.30000000000000004: integers sum exactly.
      assert.deepEqual(totals, {
        keyId: 'key_a',
        generations: 5,
        credits: 873000,
        usd: 0.4365,
        byModel: [
          { model: MODEL, generations: 3, credits: 273000, usd: 0.1365 },
          { model: OTHER_MODEL, generations: 2, credits: 600000, usd: 0.3 },
        ],
      });
      assert.deepEqual(await s.stores.usage.totals('key_none'), { keyId: 'key_none', generations: 0, credits: 0, usd: 0, byModel: [] });
    });

    it('the ledger rounds what it is given to whole micro-USD and whole credits', async () => {
      await charge('key_r', 0.0000004, 0.8); // below half a micro-USD: nothing
      await charge('key_r', 0.0000016, 3.2);
      const totals = await s.stores.usage.totals('key_r');
      assert.equal(totals.usd, 0.000002);
      assert.equal(totals.credits, 4);
      assert.ok(Number.isInteger(await s.stores.limitUsage.creditsSince('key_r', 0)));
    });

    it('mark ledger: rows found by the mark they carry, newest first, at most the limit', async () => {
      const mark = { issuerId: 7, generationId: 4_000_000_001 };
      const a1 = await charge('key_a', 0.0455, 91000, MODEL, mark);
      await charge('key_a', 0.0455, 91000, MODEL, null);
      const b1 = await charge('key_b', 0.0455, 91000, MODEL, mark);
      await charge('key_a', 0.0455, 91000, MODEL, { issuerId: 8, generationId: mark.generationId });
      const found = await s.stores.markLedger.findByMark(mark, 10);
      assert.deepEqual(found.map((g) => g.jobId), [b1, a1]);
      assert.deepEqual({ ...found[0], jobId: undefined, createdAtMs: undefined }, { keyId: 'key_b', jobId: undefined, model: MODEL, width: 640, height: 512, createdAtMs: undefined });
      assert.ok(found[0]!.createdAtMs > found[1]!.createdAtMs);
      assert.deepEqual((await s.stores.markLedger.findByMark(mark, 1)).map((g) => g.jobId), [b1]);
      assert.deepEqual(await s.stores.markLedger.findByMark({ issuerId: 7, generationId: 1 }, 10), []);
    });

    it('prompt cache: a miss, then the first value stored stays, also when several writers race', async () => {
      const cache = s.stores.promptCache;
      assert.equal(await cache.get('k1'), undefined);
      await cache.set('k1', 'first');
      await cache.set('k1', 'second');
      assert.equal(await cache.get('k1'), 'first');
      await Promise.all(['a', 'b', 'c', 'd'].map((v) => cache.set('k2', v)));
      assert.ok(['a', 'b', 'c', 'd'].includes((await cache.get('k2'))!));
      const unicode = '灯塔 "Fresh Bread" — ✓';
      await cache.set('k3', unicode);
      assert.equal(await cache.get('k3'), unicode);
    });

    it('limit usage: credits charged since a time, jobs queued or running per model', async () => {
      const t0 = ++clock;
      await charge('key_l', 0.0455, 91000, MODEL, null, t0);
      const t1 = ++clock;
      await charge('key_l', 0.1, 200000, OTHER_MODEL, null, t1);
      await charge('key_m', 0.0455, 91000, MODEL, null, ++clock);
      assert.equal(await s.stores.limitUsage.creditsSince('key_l', t0), 291000);
      assert.equal(await s.stores.limitUsage.creditsSince('key_l', t1), 200000, 'sinceMs is inclusive');
      assert.equal(await s.stores.limitUsage.creditsSince('key_l', t1 + 1), 0);
      assert.equal(await s.stores.limitUsage.creditsSince('key_none', 0), 0);

      const queued = [newJob('key_l'), newJob('key_l'), newJob('key_l', OTHER_MODEL), newJob('key_m')];
      for (const job of queued) await s.stores.jobStore.create(job);
      await s.stores.jobStore.markRunning(queued[0]!.id, ++clock);
      const inFlight = (await s.stores.limitUsage.jobsInFlight('key_l')).sort((a, b) => a.model.localeCompare(b.model));
      assert.deepEqual(inFlight, [{ model: MODEL, count: 2 }, { model: OTHER_MODEL, count: 1 }], 'succeeded jobs are not in flight');
      await s.stores.jobStore.cancel(queued[1]!.id, ++clock);
      assert.deepEqual((await s.stores.limitUsage.jobsInFlight('key_l')).find((r) => r.model === MODEL), { model: MODEL, count: 1 });
    });

    it('ping answers; the job store and outbox share the database with the rest', async () => {
      await s.stores.ping();
      const job = newJob('key_w', MODEL, { url: 'https://hooks.example/w', events: ['completed'] });
      await s.stores.jobStore.create(job);
      await s.stores.jobStore.cancel(job.id, ++clock);
      assert.deepEqual((await s.stores.webhookOutbox.listForJob(job.id)).map((d) => d.eventType), ['job.canceled']);
      assert.ok(['sqlite', 'postgres'].includes(s.stores.kind));
    });
  });
}
