/**
 * Job webhooks end to end: a real server sends to a receiver on 127.0.0.1 (a node:http server that
 * records every POST), with a fake OpenAI-compatible backend drawing the images. Checked: Standard
 * Webhooks headers that the server's own verifyWebhook accepts with the key's secret, the payload
 * (type, timestamp, the job object), a retry after a 500 under the same webhook-id, the terminal
 * events a subscription names (and those it does not), the key's default webhook, and the private
 * address policy.
 *
 * A delivery that must NOT happen is proved absent by waiting for a later one that must (the
 * outbox sends oldest first), never by sleeping.
 */
import { test, before, after, afterEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, MODEL, TEST_KEY, OTHER_KEY, type TestServer } from '../helpers/server.ts';
import { openEvents, waitForStatus, waitUntil } from '../helpers/jobs.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../fakes/fake-openai-images.ts';
import { verifyWebhook } from '../../src/jobs/webhooks/signature.ts';
import { generateWebhookSecret } from '../../src/domain/webhook-secret.ts';
import { writeRoutingFile } from '../helpers/routing.ts';

const body = { model: MODEL, prompt: 'a kite over a beach', image_size: 'square', enhance_prompt: false };
const ASYNC = { prefer: 'respond-async' };
const HOLD_MS = 60_000;
/** A failing test must not hang the file; its wait for a delivery would otherwise never end. */
const TEST_TIMEOUT = { timeout: 30_000 };

interface Delivery {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  /** The bytes as received: what the signature covers. */
  raw: string;
  json: any;
  /** The status this receiver answered. */
  answered: number;
}

interface Receiver {
  url: string;
  readonly deliveries: Delivery[];
  at(pathname: string): Delivery[];
  /** Statuses to answer on `pathname`, one per request, before falling back to 200. */
  answer(pathname: string, statuses: number[]): void;
  /** Resolves once `count` deliveries have arrived on `pathname`. */
  waitFor(pathname: string, count?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const scripted = new Map<string, number[]>();
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const pathname = new URL(req.url ?? '/', 'http://receiver.local').pathname;
      const raw = Buffer.concat(chunks).toString('utf8');
      let json: unknown = null;
      try {
        json = JSON.parse(raw);
      } catch {
        json = null;
      }
      const answered = scripted.get(pathname)?.shift() ?? 200;
      deliveries.push({ path: pathname, method: req.method ?? '', headers: req.headers, raw, json, answered });
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered < 300 ? 'ok' : 'try again');
      for (const wake of [...waiters]) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const at = (pathname: string) => deliveries.filter((d) => d.path === pathname);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    at,
    answer: (pathname, statuses) => scripted.set(pathname, [...statuses]),
    waitFor: (pathname, count = 1) =>
      new Promise((resolve) => {
        const check = () => {
          if (at(pathname).length < count) return;
          waiters.delete(check);
          resolve(at(pathname));
        };
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}


let gpu: FakeOpenaiImages;
let receiver: Receiver;
let routingFile: string;

before(async () => {
  gpu = await startFakeOpenaiImages();
  receiver = await startReceiver();
  routingFile = writeRoutingFile([`{ id: gpu, type: openai, url: "${gpu.url}", model: Qwen/Qwen-Image, concurrency: 1, extraFields: [seed] }`]);
});
after(async () => {
  await receiver.close();
  await gpu.close();
});

/** PUT/DELETE, which the shared test client does not have; same shape as its post/get. */
async function send(server: TestServer, method: 'PUT' | 'DELETE', pathname: string, json?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + pathname, {
    method,
    headers: { authorization: `Bearer ${TEST_KEY}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  return { status: res.status, json: await res.json() };
}

/** A well-formed Standard Webhooks request, signed with `secret`. */
function assertSigned(delivery: Delivery, secret: string): void {
  assert.equal(delivery.method, 'POST');
  assert.match(String(delivery.headers['content-type']), /^application\/json/);
  assert.match(String(delivery.headers['webhook-id']), /^msg_[0-9a-f-]{36}$/);
  assert.match(String(delivery.headers['webhook-timestamp']), /^\d{10}$/);
  assert.match(String(delivery.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
  assert.ok(verifyWebhook(secret, delivery.headers, delivery.raw), 'the signature verifies with the key secret');
}

describe('webhooks, private receiver allowed (WEBHOOK_ALLOW_PRIVATE_URLS=1)', () => {
  let server: TestServer;
  let secret: string;
  let barriers = 0;

  const submit = async (webhook: unknown, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const res = await server.post('/v1/images/generations', { ...body, ...extra, ...(webhook ? { webhook } : {}) }, { ...ASYNC, ...headers });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    return res.json;
  };
  /**
   * Submits a job with its own webhook and waits for that delivery. Every delivery written before it
   * was due earlier, and the outbox is sent oldest first: one that has not arrived by now never will.
   */
  const barrier = async () => {
    const pathname = `/barrier-${++barriers}`;
    await submit({ url: receiver.url + pathname });
    await receiver.waitFor(pathname);
  };

  before(async () => {
    server = await startTestServer({ BACKENDS_CONFIG: routingFile, WEBHOOK_ALLOW_PRIVATE_URLS: '1', WEBHOOK_RETRY_BASE_MS: '50' });
    const res = await server.post('/v1/webhooks/secret', undefined);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.json.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    secret = res.json.secret;
  });
  // A failed test must not leave the fake holding a job, a failure mode on, or a default webhook set.
  afterEach(async () => {
    gpu.delayMs = 10;
    gpu.failure = 'none';
    for (const status of ['queued', 'running']) {
      for (const job of (await server.get(`/v1/jobs?status=${status}&limit=100`)).json.data ?? []) {
        await server.post(`/v1/jobs/${job.id}/cancel`, undefined);
      }
    }
    await send(server, 'DELETE', '/v1/webhooks');
  });
  after(async () => {
    await server.close();
  });

  test('a succeeded job is POSTed once, signed with the key secret, with the job as its data', TEST_TIMEOUT, async () => {
    const job = await submit({ url: `${receiver.url}/a` }, { seed: 1 });
    const [delivery] = await receiver.waitFor('/a');
    assertSigned(delivery!, secret);
    assert.ok(!verifyWebhook(generateWebhookSecret(), delivery!.headers, delivery!.raw), 'another secret does not verify');
    assert.ok(!verifyWebhook(secret, delivery!.headers, delivery!.raw.replace('succeeded', 'failed')), 'an altered body does not verify');

    const payload = delivery!.json;
    assert.deepEqual(Object.keys(payload).sort(), ['data', 'timestamp', 'type']);
    assert.equal(payload.type, 'job.succeeded');
    assert.match(payload.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(payload.data.id, job.id);
    assert.equal(payload.data.status, 'succeeded');
    assert.equal(payload.data.result.data[0].seed, 1);
    assert.match(payload.data.result.data[0].url, /\/files\/generations\/.+\.png$/);
    assert.deepEqual(payload.data.result.meta.usage, { credits_used: 91000, usd_spent: 0.0455 });
    assert.equal(Date.parse(payload.timestamp), payload.data.completed_at, 'the timestamp is when the job ended');
    // The same job object GET /v1/jobs/{id} shows.
    assert.deepEqual(payload.data, (await server.get(`/v1/jobs/${job.id}`)).json);

    await barrier();
    assert.equal(receiver.at('/a').length, 1, 'delivered once: a 200 ends the delivery');
  });

  test('a receiver that answers 500 gets the same delivery again, same webhook-id, both validly signed', TEST_TIMEOUT, async () => {
    receiver.answer('/flaky', [500]);
    const job = await submit({ url: `${receiver.url}/flaky` }, { seed: 2 });
    const [first, second] = await receiver.waitFor('/flaky', 2);
    assert.deepEqual([first!.answered, second!.answered], [500, 200]);
    assertSigned(first!, secret);
    assertSigned(second!, secret);
    assert.equal(second!.headers['webhook-id'], first!.headers['webhook-id'], 'one message, retried');
    assert.equal(second!.raw, first!.raw);
    assert.equal(second!.json.type, 'job.succeeded');
    assert.equal(second!.json.data.id, job.id);

    await barrier();
    assert.equal(receiver.at('/flaky').length, 2, 'no attempt after the 200');
  });

  test('a failed and a canceled job both notify a "completed" webhook', TEST_TIMEOUT, async () => {
    gpu.failure = 'server-error';
    const failed = await submit({ url: `${receiver.url}/failed`, events: ['completed'] }, { seed: 3 });
    const [failure] = await receiver.waitFor('/failed');
    gpu.failure = 'none';
    assertSigned(failure!, secret);
    assert.equal(failure!.json.type, 'job.failed');
    assert.equal(failure!.json.data.id, failed.id);
    assert.equal(failure!.json.data.status, 'failed');
    assert.equal(failure!.json.data.result, null);
    assert.equal(failure!.json.data.error.code, 'backend_error');
    assert.match(failure!.json.data.error.message, /CUDA error/);

    gpu.delayMs = HOLD_MS;
    const canceled = await submit({ url: `${receiver.url}/canceled` }, { seed: 4 });
    await waitUntil(() => gpu.inFlight === 1, 'the job reached the backend');
    assert.equal((await server.post(`/v1/jobs/${canceled.id}/cancel`, undefined)).json.status, 'canceled');
    gpu.delayMs = 10;
    const [cancelNote] = await receiver.waitFor('/canceled');
    assertSigned(cancelNote!, secret);
    assert.equal(cancelNote!.json.type, 'job.canceled');
    assert.equal(cancelNote!.json.data.id, canceled.id);
    assert.equal(cancelNote!.json.data.status, 'canceled');
    assert.equal(cancelNote!.json.data.result, null);
  });

  test('events: ["succeeded"] is not notified of a cancel, and is of a success', TEST_TIMEOUT, async () => {
    const hook = { url: `${receiver.url}/only-succeeded`, events: ['succeeded'] };
    gpu.delayMs = HOLD_MS;
    const canceled = await submit(hook, { seed: 5 });
    await waitUntil(() => gpu.inFlight === 1, 'the job reached the backend');
    const stream = await openEvents(`${server.url}/v1/jobs/${canceled.id}/events`, TEST_KEY);
    assert.equal((await server.post(`/v1/jobs/${canceled.id}/cancel`, undefined)).json.status, 'canceled');
    assert.equal((await stream.ended).at(-1)!.event, 'canceled');
    gpu.delayMs = 10;

    const succeeded = await submit(hook, { seed: 6 });
    const [first] = await receiver.waitFor('/only-succeeded');
    assert.equal(first!.json.type, 'job.succeeded');
    assert.equal(first!.json.data.id, succeeded.id, 'the first delivery is the later job: the canceled one was never sent');
    await barrier();
    assert.deepEqual(receiver.at('/only-succeeded').map((d) => d.json.data.id), [succeeded.id]);
  });

  test("the key's default webhook (PUT /v1/webhooks) serves jobs that name none, and only that key's", TEST_TIMEOUT, async () => {
    const put = await send(server, 'PUT', '/v1/webhooks', { url: `${receiver.url}/default` });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.deepEqual(put.json, { url: `${receiver.url}/default`, events: ['completed'], has_secret: true });
    assert.deepEqual((await server.get('/v1/webhooks')).json, put.json);

    const plain = await submit(null, { seed: 7 });
    const [delivery] = await receiver.waitFor('/default');
    assertSigned(delivery!, secret);
    assert.equal(delivery!.json.type, 'job.succeeded');
    assert.equal(delivery!.json.data.id, plain.id);

    // A job's own webhook wins over the default; another key's jobs never use this key's default.
    const own = await submit({ url: `${receiver.url}/own` }, { seed: 8 });
    const other = await submit(null, { seed: 9 }, { authorization: `Bearer ${OTHER_KEY}` });
    await receiver.waitFor('/own');
    assert.equal(receiver.at('/own')[0]!.json.data.id, own.id);
    await waitForStatus(server, other.id, 'succeeded', OTHER_KEY);

    const removed = await send(server, 'DELETE', '/v1/webhooks');
    assert.equal(removed.status, 200);
    assert.equal(removed.json.url, null);
    const after = await submit(null, { seed: 10 });
    await waitForStatus(server, after.id, 'succeeded');
    await barrier();
    assert.deepEqual(receiver.at('/default').map((d) => d.json.data.id), [plain.id], 'only the job that named no webhook while the default was set');
  });
});

describe('webhooks, private receivers not allowed (the default)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ BACKENDS_CONFIG: routingFile });
  });
  after(async () => {
    await server.close();
  });

  test('a loopback or private webhook URL is a 400 naming webhook.url, and nothing is stored or sent', TEST_TIMEOUT, async () => {
    const jobsBefore = (await server.get('/v1/jobs?limit=100')).json.data.length;
    const requestsBefore = gpu.requests.length;
    const deliveriesBefore = receiver.deliveries.length;
    for (const url of [`${receiver.url}/private`, 'http://localhost:9/x', 'http://[::1]:9/x', 'http://10.1.2.3/x', 'http://169.254.169.254/latest']) {
      for (const headers of [ASYNC, {}]) {
        const res = await server.post('/v1/images/generations', { ...body, webhook: { url } }, headers);
        assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.json)}`);
        assert.equal(res.json.error.code, 'invalid_value');
        assert.equal(res.json.error.param, 'webhook.url');
        assert.match(res.json.error.message, /^webhook\.url /);
      }
    }
    const put = await send(server, 'PUT', '/v1/webhooks', { url: `${receiver.url}/private-default` });
    assert.equal(put.status, 400);
    assert.equal(put.json.error.param, 'url');
    assert.equal((await server.get('/v1/webhooks')).json.url, null);

    assert.equal((await server.get('/v1/jobs?limit=100')).json.data.length, jobsBefore);
    assert.equal(gpu.requests.length, requestsBefore);
    assert.equal(receiver.deliveries.length, deliveriesBefore);
  });
});
