/**
 * Requests from the adversarial pass (issue 13) that used to get a 500: each now gets the 4xx (or 507)
 * that says what is wrong, and the server keeps serving.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';

const auth = { authorization: `Bearer ${TEST_KEY}` };

function findFile(dir: string, name: string): string | null {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isFile() && entry.name === name) return p;
    if (entry.isDirectory()) {
      const hit = findFile(p, name);
      if (hit) return hit;
    }
  }
  return null;
}

async function send(url: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the assertion message
  }
  return { status: res.status, json };
}

describe('requests that used to be a 500', () => {
  let server: TestServer;
  let imageUrl: string;
  before(async () => {
    server = await startTestServer();
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a pear', image_size: 'square', enhance_prompt: false });
    assert.equal(res.status, 200);
    imageUrl = res.json.data[0].url;
  });
  after(async () => {
    await server.close();
  });

  test('GET /v1/models/%25 is a 404 naming the model', async () => {
    const res = await send(`${server.url}/v1/models/%25`, { headers: auth });
    assert.equal(res.status, 404, JSON.stringify(res.json));
    assert.equal(res.json.error.code, 'model_not_found');
    assert.equal((await send(`${server.url}/v1/models/alibaba%2Fqwen-image-2-0`, { headers: auth })).status, 200, 'an encoded id still resolves');
  });

  test('paths the router refuses get the API error body', async () => {
    for (const p of ['/v1/jobs/%', '/files/%', '/v1/admin/keys/%']) {
      const res = await send(`${server.url}${p}`, { headers: auth });
      assert.equal(res.status, 400, `${p}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.error.code, 'invalid_value');
      assert.match(res.json.error.message, /not valid percent-encoding/);
    }
    const long = await send(`${server.url}/v1/jobs/${'a'.repeat(5000)}`, { headers: auth });
    assert.equal(long.status, 414);
    assert.equal(long.json.error.code, 'uri_too_long');
  });

  test('file paths that are not files are 404s', async () => {
    for (const p of ['/files/generations', `/files/generations/${'a'.repeat(300)}.png`, `${new URL(imageUrl).pathname}/x`]) {
      const res = await send(`${server.url}${p}`);
      assert.equal(res.status, 404, `${p}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.error.code, 'not_found');
    }
    assert.equal((await fetch(imageUrl)).status, 200, 'the real file is still served');
  });

  test('reference images kept for a job are not downloadable, only generated images are', async () => {
    // the blob store keeps a job's references as inputs/<job id>-<k>.rgb beside generations/
    const image = path.join(server.dataDir, ...[...new URL(imageUrl).pathname.split('/').slice(2)]);
    const found = fs.existsSync(image) ? image : findFile(server.dataDir, path.basename(image));
    assert.ok(found, `the generated image is a file under ${server.dataDir}`);
    const root = path.dirname(path.dirname(found));
    fs.mkdirSync(path.join(root, 'inputs'), { recursive: true });
    fs.writeFileSync(path.join(root, 'inputs', 'job_planted-0.rgb'), Buffer.alloc(12, 7));
    const res = await send(`${server.url}/files/inputs/job_planted-0.rgb`);
    assert.equal(res.status, 404, JSON.stringify(res.json));
    assert.equal(res.json.error.code, 'not_found');
    assert.equal((await fetch(imageUrl)).status, 200, 'the generated image is still served');
  });

  test('a multipart body without a boundary, or cut short, is a 400', async () => {
    const noBoundary = await send(`${server.url}/v1/watermark/detect`, { method: 'POST', headers: { ...auth, 'content-type': 'multipart/form-data' }, body: 'abc' });
    assert.equal(noBoundary.status, 400, JSON.stringify(noBoundary.json));
    assert.match(noBoundary.json.error.message, /multipart body could not be read: .*boundary/i);
    const truncated = await send(`${server.url}/v1/watermark/detect`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'multipart/form-data; boundary=XX' },
      body: '--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc',
    });
    assert.equal(truncated.status, 400, JSON.stringify(truncated.json));
    assert.match(truncated.json.error.message, /multipart body could not be read/);
  });

  test('a data: URI reference of several MiB is validated without overflowing the URL check', async () => {
    // Noise does not compress: about 7 MB of PNG, 9.5 MB of base64, within the 20 MB image and 32 MB body limits.
    const png = await sharp({ create: { width: 1800, height: 1400, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
    assert.ok(png.length > 6_000_000, `${png.length} bytes`);
    const res = await server.post('/v1/images/generations', {
      model: MODEL,
      prompt: 'make it blue',
      image_size: 'square',
      enhance_prompt: false,
      response_format: 'b64_json',
      image_urls: [`data:image/png;base64,${png.toString('base64')}`],
    });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 500));
    const bad = await server.post('/v1/images/generations', { model: MODEL, prompt: 'x', image_urls: [`data:image/png;base64${'A'.repeat(300)}`] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'image_urls[0]');
  });
});

/** Opens a raw socket, writes `head`, and resolves with everything the server sent once it closes the socket. */
function rawExchange(url: string, head: string, trickle?: { byte: string; everyMs: number }): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      if (trickle) timer = setInterval(() => socket.writable && socket.write(trickle.byte), trickle.everyMs);
    });
    socket.on('data', (d) => (received += d));
    socket.on('error', () => undefined); // a reset after the answer is the server closing
    socket.on('close', () => {
      clearInterval(timer);
      resolve(received);
    });
    socket.on('timeout', () => reject(new Error('no close')));
  });
}

describe('slow and unauthenticated clients', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ HEADERS_TIMEOUT_MS: '300', BODY_TIMEOUT_MS: '600', TIMEOUT_CHECK_INTERVAL_MS: '50' });
  });
  after(async () => {
    await server.close();
  });

  test('a body trickled a byte at a time is cut off at BODY_TIMEOUT_MS with a 408 and the socket closed', async () => {
    const head = `POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`;
    // The socket only closes if the server closes it: the trickle would go on for 100 000 intervals.
    const answer = await rawExchange(server.url, head, { byte: ' ', everyMs: 50 });
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.equal((await server.get('/v1/usage')).json.generations, 0);
  });

  test('headers that never end are cut off at HEADERS_TIMEOUT_MS', async () => {
    const answer = await rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { byte: 'X', everyMs: 50 });
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  test('a request without a valid key is refused before its body is read', async () => {
    // 31 MB announced, nothing sent: the 401 (and the close) can only come before the body.
    for (const auth of ['', 'Authorization: Bearer not-a-key\r\n']) {
      const head = `POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${31 * 1024 * 1024}\r\n\r\n`;
      const answer = await rawExchange(server.url, head);
      assert.match(answer, /^HTTP\/1\.1 401/);
      assert.match(answer, /connection: close/i);
      assert.match(answer, /"code":"(missing|invalid)_api_key"/);
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});

/** Mounts a tmpfs of `size` (root with CAP_SYS_ADMIN, as on the CI machine); null where that is not allowed. */
function mountTmpfs(size: string): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-small-fs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch {
    fs.rmdirSync(dir);
    return null;
  }
}

describe('a full disk', () => {
  // Mounted when this suite runs (not at load, so a filtered run leaves no mount behind).
  let smallFs: string | null = null;
  let server: TestServer;
  before(async () => {
    smallFs = process.platform === 'linux' ? mountTmpfs('4m') : null;
    if (smallFs) server = await startTestServer({ DATA_DIR: smallFs });
  });
  after(async () => {
    await server?.close();
    if (smallFs) {
      execFileSync('umount', [smallFs]);
      fs.rmdirSync(smallFs);
    }
  });

  test('a generation that cannot be stored is a 507, leaves no temporary file, and the server recovers when space is freed', async (t) => {
    if (!smallFs) {
      t.skip('cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)');
      return;
    }
    const ok = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a plum', image_size: 'square', enhance_prompt: false });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    // Fill what is left but a few KiB: enough for the database to record a job, not for a PNG.
    const free = fs.statfsSync(smallFs!).bavail * fs.statfsSync(smallFs!).bsize;
    const filler = path.join(smallFs!, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free - 48 * 1024)));
    const statuses: number[] = [];
    for (let i = 0; i < 8 && !statuses.includes(507); i++) {
      const res = await server.post('/v1/images/generations', { model: MODEL, prompt: `a plum ${i}`, seed: i, image_size: 'square_hd', enhance_prompt: false });
      statuses.push(res.status);
      if (res.status !== 200) {
        assert.equal(res.status, 507, JSON.stringify(res.json));
        assert.equal(res.json.error.code, 'insufficient_storage');
      }
    }
    assert.ok(statuses.includes(507), `statuses: ${statuses}`);
    const leftovers = fs.readdirSync(smallFs!, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, [], 'no temporary file keeps the disk full');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    fs.rmSync(filler);
    const again = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a plum again', image_size: 'square', enhance_prompt: false });
    assert.equal(again.status, 200, JSON.stringify(again.json));
  });
});
