/**
 * Webhooks below the job store: signatures, the SQLite outbox and the dispatcher against a real
 * receiver on loopback. Delivery rows are inserted with SQL, as the job store writes them. The
 * per-key settings and /v1/webhooks are tested in src/http/routes/webhooks.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { openDatabase, type SqliteDatabase } from '../../store/sqlite/database.ts';
import { createSqliteWebhookOutbox } from '../sqlite/webhook-outbox.ts';
import type { WebhookOutbox } from '../ports.ts';
import { ApiError } from '../../domain/errors.ts';
import { signWebhook, verifyWebhook } from './signature.ts';
import { generateWebhookSecret } from '../../domain/webhook-secret.ts';
import { createWebhookDispatcher, validateWebhookUrl, type WebhookDispatcherDeps } from './dispatcher.ts';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

// ---------------------------------------------------------------- helpers
let dir: string;
let fileSeq = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webhooks-test-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function freshDb(): SqliteDatabase {
  return openDatabase(path.join(dir, `db-${++fileSeq}.sqlite`));
}

let deliverySeq = 0;
function insertDelivery(db: SqliteDatabase, url: string, opts: { atMs: number; jobId?: string; attempts?: number }): string {
  const id = `msg_${crypto.randomUUID()}`;
  db.prepare(
    `INSERT INTO webhook_deliveries (id, job_id, key_id, url, event_type, created_at_ms, attempts, next_attempt_at_ms, status)
     VALUES (?, ?, 'key_test', ?, 'job.succeeded', ?, ?, ?, 'pending')`,
  ).run(id, opts.jobId ?? `job_${++deliverySeq}`, url, opts.atMs, opts.attempts ?? 0, opts.atMs);
  return id;
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  path: string;
}

type Answer = { status: number; headers?: Record<string, string> } | 'hang';

/** A webhook receiver on loopback; `answer(n)` decides the response to the n-th request (1-based). */
async function startReceiver(answer: (n: number) => Answer) {
  const requests: Received[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
      for (const w of waiters.filter((w) => requests.length >= w.count)) w.resolve();
      const a = answer(requests.length);
      if (a === 'hang') return;
      res.writeHead(a.status, a.headers);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    /** Resolves once `count` requests have arrived. */
    waitFor(count: number): Promise<void> {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const BODY = JSON.stringify({ type: 'job.succeeded', timestamp: '2025-01-01T00:00:00.000Z', data: { id: 'job_1' } });

function dispatcherFor(outbox: WebhookOutbox, secret: string, overrides: Partial<WebhookDispatcherDeps> = {}) {
  return createWebhookDispatcher({
    outbox,
    secretFor: async () => secret,
    renderBody: async () => BODY,
    allowPrivate: true,
    logger: silent,
    ...overrides,
  });
}

// ---------------------------------------------------------------- signatures
describe('signature', () => {
  // The test vector published with the Standard Webhooks reference libraries.
  const vector = {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestampS: 1614265330,
    body: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };

  test('reproduces the published Standard Webhooks vector', () => {
    assert.equal(signWebhook(vector.secret, vector.id, vector.timestampS, vector.body), vector.signature);
  });

  test('matches an HMAC-SHA256 computed independently, and verify accepts it', () => {
    const keyBytes = Buffer.alloc(24, 0xa5);
    const secret = `whsec_${keyBytes.toString('base64')}`;
    const expected = 'v1,' + crypto.createHmac('sha256', keyBytes).update(`msg_1.1700000000.${BODY}`).digest('base64');
    assert.equal(signWebhook(secret, 'msg_1', 1700000000, BODY), expected);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': '1700000000', 'webhook-signature': expected };
    assert.equal(verifyWebhook(secret, headers, BODY, { nowS: 1700000010 }), true);
    assert.equal(verifyWebhook(secret, headers, Buffer.from(BODY), { nowS: 1700000010 }), true);
  });

  test('verify rejects a tampered body, an old or future timestamp, a wrong secret and missing headers', () => {
    const { secret, id, timestampS, body, signature } = vector;
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': signature };
    const nowS = timestampS + 60;
    assert.equal(verifyWebhook(secret, headers, body, { nowS }), true);
    assert.equal(verifyWebhook(secret, headers, body.replace('2432232314', '2432232315'), { nowS }), false);
    assert.equal(verifyWebhook(secret, headers, body, { nowS: timestampS + 301 }), false);
    assert.equal(verifyWebhook(secret, headers, body, { nowS: timestampS - 301 }), false);
    assert.equal(verifyWebhook(secret, headers, body, { nowS: timestampS + 3600, toleranceS: 7200 }), true);
    assert.equal(verifyWebhook(generateWebhookSecret(), headers, body, { nowS }), false);
    assert.equal(verifyWebhook(secret, { ...headers, 'webhook-id': 'msg_other' }, body, { nowS }), false);
    assert.equal(verifyWebhook(secret, { 'webhook-id': id, 'webhook-timestamp': String(timestampS) }, body, { nowS }), false);
  });

  test('verify accepts a list of signatures when one matches (secret rotation), whatever the header case', () => {
    const { secret, id, timestampS, body, signature } = vector;
    const headers = {
      'Webhook-Id': id,
      'Webhook-Timestamp': String(timestampS),
      'Webhook-Signature': `v1,bm9wZQ== v1a,AAAA ${signature}`,
    };
    assert.equal(verifyWebhook(secret, headers, body, { nowS: timestampS }), true);
    assert.equal(verifyWebhook(secret, { ...headers, 'Webhook-Signature': 'v1,bm9wZQ== v2,abc' }, body, { nowS: timestampS }), false);
  });

  test('generated secrets are whsec_ + base64 of 24 random bytes', () => {
    const a = generateWebhookSecret();
    assert.match(a, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(Buffer.from(a.slice('whsec_'.length), 'base64').length, 24);
    assert.notEqual(a, generateWebhookSecret());
  });
});

// ---------------------------------------------------------------- dispatcher
describe('dispatcher', () => {
  const secret = generateWebhookSecret();

  test('delivers with the Standard Webhooks headers and a valid signature', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 204 }));
    const nowMs = 1_700_000_000_123;
    const dispatcher = dispatcherFor(outbox, secret, { now: () => nowMs });
    try {
      const id = insertDelivery(db, receiver.url, { atMs: nowMs - 5, jobId: 'job_a' });
      assert.equal(await dispatcher.deliverDue(), 1);
      assert.equal(receiver.requests.length, 1);
      const got = receiver.requests[0]!;
      assert.equal(got.path, '/hook');
      assert.equal(got.body, BODY);
      assert.equal(got.headers['content-type'], 'application/json');
      assert.equal(got.headers['user-agent'], 'qwen-image-server');
      assert.equal(got.headers['webhook-id'], id);
      assert.equal(got.headers['webhook-timestamp'], '1700000000');
      assert.equal(verifyWebhook(secret, got.headers, got.body, { nowS: 1700000000 }), true);
      const [row] = await outbox.listForJob('job_a');
      assert.equal(row!.status, 'delivered');
      assert.equal(row!.attempts, 1);
      assert.equal(row!.lastStatus, 204);
      assert.equal(await outbox.nextDueAtMs(), null);
      assert.equal(await dispatcher.deliverDue(), 0);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('retries a 500 with the same webhook-id and ends delivered after 2 attempts', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver((n) => ({ status: n === 1 ? 500 : 200 }));
    const dispatcher = dispatcherFor(outbox, secret, { retry: { baseDelayMs: 20 } });
    try {
      const id = insertDelivery(db, receiver.url, { atMs: Date.now(), jobId: 'job_retry' });
      dispatcher.start();
      await receiver.waitFor(2);
      // close() waits for the send in flight to be recorded.
      await dispatcher.close();
      assert.deepEqual(receiver.requests.map((r) => r.headers['webhook-id']), [id, id]);
      for (const r of receiver.requests) {
        assert.equal(verifyWebhook(secret, r.headers, r.body), true);
      }
      const [row] = await outbox.listForJob('job_retry');
      assert.equal(row!.status, 'delivered');
      assert.equal(row!.attempts, 2);
      assert.equal(row!.lastStatus, 200);
      assert.equal(row!.lastError, null);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('410 Gone fails the delivery at once', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 410 }));
    const dispatcher = dispatcherFor(outbox, secret);
    try {
      insertDelivery(db, receiver.url, { atMs: Date.now() - 1, jobId: 'job_gone' });
      assert.equal(await dispatcher.deliverDue(), 1);
      const [row] = await outbox.listForJob('job_gone');
      assert.equal(row!.status, 'failed');
      assert.equal(row!.attempts, 1);
      assert.equal(row!.lastStatus, 410);
      assert.match(row!.lastError!, /410/);
      assert.equal(await dispatcher.deliverDue(), 0);
      assert.equal(receiver.requests.length, 1);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('backs off exponentially up to the cap, then fails after maxAttempts', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 500 }));
    let nowMs = 1_000_000;
    // random 0.5 → jitter factor exactly 1, so the delays are the nominal ones.
    const dispatcher = dispatcherFor(outbox, secret, {
      now: () => nowMs,
      random: () => 0.5,
      retry: { baseDelayMs: 1000, maxDelayMs: 1500, maxAttempts: 3 },
    });
    try {
      insertDelivery(db, receiver.url, { atMs: nowMs, jobId: 'job_exhaust' });
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        assert.equal(await dispatcher.deliverDue(), 1);
        const [row] = await outbox.listForJob('job_exhaust');
        assert.equal(row!.attempts, attempt);
        assert.equal(row!.lastStatus, 500);
        if (attempt < 3) {
          assert.equal(row!.status, 'pending');
          delays.push(row!.nextAttemptAtMs - nowMs);
          // Not yet due: nothing is sent.
          assert.equal(await dispatcher.deliverDue(), 0);
          nowMs = row!.nextAttemptAtMs;
        } else {
          assert.equal(row!.status, 'failed');
          assert.match(row!.lastError!, /gave up after 3 attempts: HTTP 500/);
        }
      }
      assert.deepEqual(delays, [1000, 1500]);
      assert.equal(receiver.requests.length, 3);
      assert.equal(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size, 1);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('jitter stays within ±20 %', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 503 }));
    const nowMs = 5_000_000;
    const results: number[] = [];
    try {
      for (const r of [0, 0.999999]) {
        const dispatcher = dispatcherFor(outbox, secret, { now: () => nowMs, random: () => r, retry: { baseDelayMs: 10_000 } });
        insertDelivery(db, receiver.url, { atMs: nowMs, jobId: `job_jitter_${r}` });
        await dispatcher.deliverDue();
        await dispatcher.close();
        const [row] = await outbox.listForJob(`job_jitter_${r}`);
        results.push(row!.nextAttemptAtMs - nowMs);
      }
      assert.equal(results[0], 8000);
      assert.ok(results[1]! <= 12_000 && results[1]! > 11_999, `got ${results[1]}`);
    } finally {
      await receiver.close();
      db.close();
    }
  });

  test('honours Retry-After when it asks for longer than the backoff', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    const nowMs = 2_000_000;
    const dispatcher = dispatcherFor(outbox, secret, { now: () => nowMs, retry: { baseDelayMs: 20 } });
    try {
      insertDelivery(db, receiver.url, { atMs: nowMs, jobId: 'job_ra' });
      await dispatcher.deliverDue();
      const [row] = await outbox.listForJob('job_ra');
      assert.equal(row!.status, 'pending');
      assert.equal(row!.nextAttemptAtMs, nowMs + 120_000);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('does not follow redirects: a 3xx is a failed attempt', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver((n) => (n === 1 ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 }));
    const dispatcher = dispatcherFor(outbox, secret);
    try {
      insertDelivery(db, receiver.url, { atMs: Date.now() - 1, jobId: 'job_redirect' });
      await dispatcher.deliverDue();
      assert.deepEqual(receiver.requests.map((r) => r.path), ['/hook']);
      const [row] = await outbox.listForJob('job_redirect');
      assert.equal(row!.status, 'pending');
      assert.equal(row!.lastStatus, 302);
      assert.match(row!.lastError!, /redirects are not followed/);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('a receiver that does not answer in time is a failed attempt', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => 'hang');
    const dispatcher = dispatcherFor(outbox, secret, { timeoutMs: 200 });
    try {
      insertDelivery(db, receiver.url, { atMs: Date.now() - 1, jobId: 'job_slow' });
      await dispatcher.deliverDue();
      const [row] = await outbox.listForJob('job_slow');
      assert.equal(row!.status, 'pending');
      assert.equal(row!.lastStatus, null);
      assert.match(row!.lastError!, /no answer within 200 ms/);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('refuses loopback when private addresses are not allowed, without reaching the receiver', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 200 }));
    const dispatcher = dispatcherFor(outbox, secret, { allowPrivate: false });
    try {
      // An IP literal never goes through a DNS lookup: refused before sending, for good.
      insertDelivery(db, receiver.url, { atMs: Date.now() - 1, jobId: 'job_literal' });
      // A name is refused by the agent's lookup at connect time; DNS may change, so it is retried.
      insertDelivery(db, `http://localhost:${receiver.port}/hook`, { atMs: Date.now() - 1, jobId: 'job_name' });
      assert.equal(await dispatcher.deliverDue(), 2);
      const [literal] = await outbox.listForJob('job_literal');
      assert.equal(literal!.status, 'failed');
      assert.match(literal!.lastError!, /non-public address \(127\.0\.0\.1\)/);
      const [name] = await outbox.listForJob('job_name');
      assert.equal(name!.status, 'pending');
      assert.equal(name!.attempts, 1);
      assert.match(name!.lastError!, /non-public address/);
      assert.equal(receiver.requests.length, 0);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('a delivery whose job is gone fails without a send', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 200 }));
    const dispatcher = dispatcherFor(outbox, secret, { renderBody: async () => null });
    try {
      insertDelivery(db, receiver.url, { atMs: Date.now() - 1, jobId: 'job_deleted' });
      await dispatcher.deliverDue();
      const [row] = await outbox.listForJob('job_deleted');
      assert.equal(row!.status, 'failed');
      assert.equal(row!.lastError, 'job no longer exists');
      assert.equal(receiver.requests.length, 0);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('sends at most maxInFlight at once, oldest due first', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    const receiver = await startReceiver(() => ({ status: 200 }));
    const dispatcher = dispatcherFor(outbox, secret, { maxInFlight: 2 });
    try {
      const base = Date.now() - 1000;
      const ids = [0, 1, 2, 3, 4].map((i) => insertDelivery(db, receiver.url, { atMs: base + i }));
      assert.equal(await dispatcher.deliverDue(), 2);
      assert.equal(await dispatcher.deliverDue(), 2);
      assert.equal(await dispatcher.deliverDue(), 1);
      assert.deepEqual(receiver.requests.map((r) => r.headers['webhook-id']), ids);
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });

  test('kick() wakes a sleeping loop for a delivery written after it went to sleep', async () => {
    const db = freshDb();
    const real = createSqliteWebhookOutbox(db);
    // Each look at the outbox ends with nextDueAtMs: resolving here says the loop has gone to sleep.
    let slept!: () => void;
    const asleep = new Promise<void>((resolve) => (slept = resolve));
    const outbox: WebhookOutbox = {
      ...real,
      async nextDueAtMs() {
        const at = await real.nextDueAtMs();
        slept();
        return at;
      },
    };
    const receiver = await startReceiver(() => ({ status: 200 }));
    const dispatcher = dispatcherFor(outbox, secret);
    try {
      dispatcher.start();
      await asleep;
      // With nothing due the loop sleeps up to 60 s; only the kick can bring this one in sooner.
      const id = insertDelivery(db, receiver.url, { atMs: Date.now(), jobId: 'job_kick' });
      dispatcher.kick();
      await receiver.waitFor(1);
      await dispatcher.close();
      assert.equal(receiver.requests[0]!.headers['webhook-id'], id);
      assert.equal((await real.listForJob('job_kick'))[0]!.status, 'delivered');
    } finally {
      await dispatcher.close();
      await receiver.close();
      db.close();
    }
  });
});

// ---------------------------------------------------------------- outbox
describe('sqlite outbox', () => {
  test('due, nextDueAtMs and the terminal states', async () => {
    const db = freshDb();
    const outbox = createSqliteWebhookOutbox(db);
    try {
      assert.equal(await outbox.nextDueAtMs(), null);
      const a = insertDelivery(db, 'https://example.com/a', { atMs: 100, jobId: 'job_o' });
      const b = insertDelivery(db, 'https://example.com/b', { atMs: 200, jobId: 'job_o' });
      assert.equal(await outbox.nextDueAtMs(), 100);
      assert.deepEqual((await outbox.due(150, 10)).map((d) => d.id), [a]);
      assert.deepEqual((await outbox.due(250, 10)).map((d) => d.id), [a, b]);
      assert.deepEqual((await outbox.due(250, 1)).map((d) => d.id), [a]);

      await outbox.markRetry(a, 1, 500, 'HTTP 500', 500);
      assert.equal(await outbox.nextDueAtMs(), 200);
      await outbox.markFailed(b, 1, 'HTTP 410', 410);
      assert.equal(await outbox.nextDueAtMs(), 500);
      await outbox.markDelivered(a, 2, 200);
      assert.equal(await outbox.nextDueAtMs(), null);
      // A late report does not revive a finished delivery.
      await outbox.markRetry(b, 2, 900, 'late', null);
      const rows = await outbox.listForJob('job_o');
      assert.deepEqual(
        rows.map((r) => [r.id, r.status, r.attempts, r.lastStatus, r.lastError]),
        [
          [a, 'delivered', 2, 200, null],
          [b, 'failed', 1, 410, 'HTTP 410'],
        ],
      );
      assert.equal(rows[0]!.url, 'https://example.com/a');
      assert.equal(rows[0]!.eventType, 'job.succeeded');
      assert.equal(rows[0]!.keyId, 'key_test');
    } finally {
      db.close();
    }
  });
});

// ---------------------------------------------------------------- URL validation
describe('validateWebhookUrl', () => {
  function refusal(url: string, allowPrivate = false): string {
    try {
      validateWebhookUrl(url, allowPrivate, 'webhook.url');
    } catch (err) {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 'invalid_value');
      assert.equal(err.param, 'webhook.url');
      return err.message;
    }
    return 'accepted';
  }

  test('accepts public http(s) URLs', () => {
    assert.equal(refusal('https://hooks.example.com/path?x=1'), 'accepted');
    assert.equal(refusal('http://example.com:8080/'), 'accepted');
    assert.equal(refusal('https://8.8.8.8/hook'), 'accepted');
  });

  test('refuses what could never be delivered', () => {
    assert.match(refusal('not a url'), /webhook\.url is not a valid URL/);
    assert.match(refusal('ftp://example.com/'), /only http and https/);
    assert.match(refusal('file:///etc/passwd'), /only http and https/);
    assert.match(refusal('https://user:pass@example.com/'), /credentials/);
    assert.match(refusal(`https://example.com/${'a'.repeat(2048)}`), /longer than 2048/);
  });

  test('refuses non-public addresses and localhost unless private addresses are allowed', () => {
    for (const url of ['http://127.0.0.1/', 'http://10.1.2.3/', 'http://169.254.169.254/latest', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://2130706433/']) {
      assert.match(refusal(url), /non-public address/, url);
      assert.equal(refusal(url, true), 'accepted', url);
    }
    for (const url of ['http://localhost:3000/', 'http://LOCALHOST./', 'http://api.localhost/']) {
      assert.match(refusal(url), /localhost/, url);
      assert.equal(refusal(url, true), 'accepted', url);
    }
  });
});
