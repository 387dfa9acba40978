import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readBody, sendJson, startHttpServer } from '../testing/fake-http.ts';
import { isBackendFailure } from './errors.ts';
import { BackendHttpClient, extractErrorReason, httpStatusFailure, parseRetryAfter } from './http.ts';

describe('BackendHttpClient', () => {
  it('turns credentials in the URL into a Basic header and keeps the password out of errors', async () => {
    const seen: Array<string | undefined> = [];
    const server = await startHttpServer(async (req, res) => {
      seen.push(req.headers.authorization);
      await readBody(req);
      sendJson(res, 500, { error: 'boom for s3cret-pass' });
    });
    const client = new BackendHttpClient({ backendId: 'x', baseUrl: server.url.replace('http://', 'http://user:s3cret-pass@') });
    assert.ok(!client.baseUrl.includes('s3cret'));
    await assert.rejects(client.callOk('GET', '/system_stats'), (err: unknown) => {
      assert.ok(isBackendFailure(err));
      assert.ok(!err.message.includes('s3cret-pass'), err.message);
      return true;
    });
    assert.equal(seen[0], `Basic ${Buffer.from('user:s3cret-pass').toString('base64')}`);
    await client.close();
    await server.close();
  });

  it('refuses response bodies over the limit (declared or streamed)', async () => {
    const server = await startHttpServer((req, res) => {
      if (req.url === '/declared') sendJson(res, 200, { data: 'x'.repeat(2000) });
      else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('x'.repeat(1500));
        res.end('y'.repeat(1500));
      }
    });
    const client = new BackendHttpClient({ backendId: 'x', baseUrl: server.url, maxResponseBytes: 1000 });
    for (const path of ['/declared', '/streamed']) {
      await assert.rejects(client.call('GET', path), (err: unknown) => isBackendFailure(err) && err.code === 'backend_error' && /more than 1000 bytes/.test(err.message));
    }
    await client.close();
    await server.close();
  });

  it('a per-call timeout is 503 engine_unavailable', async () => {
    const server = await startHttpServer(() => undefined);
    const client = new BackendHttpClient({ backendId: 'x', baseUrl: server.url, retryAfterS: 2 });
    await assert.rejects(client.call('GET', '/hang', { timeoutMs: 50 }), (err: unknown) => {
      assert.ok(isBackendFailure(err) && err.code === 'engine_unavailable');
      assert.equal(err.retryAfterS, 2);
      assert.match(err.message, /within 50 ms/);
      return true;
    });
    await client.close();
    await server.close();
  });
});

describe('error helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('12'), 12);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1)), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });

  it('extractErrorReason understands the common error dialects', () => {
    assert.equal(extractErrorReason('{"error":{"message":"bad size","type":"invalid_request_error"}}'), 'bad size');
    assert.equal(extractErrorReason('{"error":"prompt required"}'), 'prompt required');
    assert.equal(extractErrorReason('{"detail":"Field required"}'), 'Field required');
    assert.equal(extractErrorReason('{"code":"InvalidParameter","message":"size"}'), 'InvalidParameter: size');
    assert.equal(extractErrorReason('<html>\n502 Bad Gateway\n</html>'), '<html> 502 Bad Gateway </html>');
  });

  it('httpStatusFailure maps statuses to the catalogue', () => {
    const headers = { get: (name: string) => (name === 'retry-after' ? '9' : null) };
    const map = (status: number) => httpStatusFailure('b', { status, headers, body: Buffer.from('{}') }, { retryAfterS: 5, what: 'POST /x' });
    assert.deepEqual([map(429).code, map(429).retryAfterS], ['engine_unavailable', 9]);
    assert.equal(map(503).code, 'engine_unavailable');
    assert.deepEqual([map(400).code, map(400).retryable], ['backend_rejected', false]);
    assert.deepEqual([map(422).code, map(422).status], ['backend_rejected', 400]);
    assert.deepEqual([map(401).code, map(401).status], ['backend_error', 502]);
    assert.deepEqual([map(500).code, map(500).retryable], ['backend_error', true]);
    assert.equal(map(404).code, 'backend_error');
  });
});
