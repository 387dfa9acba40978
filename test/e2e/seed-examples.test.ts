/**
 * The seed's own Python (requests) and JavaScript (fetch) examples, copied verbatim into
 * test/fixtures/seed-examples/, run with only the base URL, the key and the image URLs changed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startTestServer, REPO_ROOT, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { startImageServer, type ImageServer } from '../helpers/image-server.ts';

const run = promisify(execFile);
let server: TestServer;
let images: ImageServer;
before(async () => {
  images = await startImageServer();
  server = await startTestServer();
});
after(async () => {
  await server.close();
  await images.close();
});

function adapt(source: string): string {
  const out = source
    .replaceAll('https://api.aimlapi.com', server.url)
    .replaceAll('<YOUR_AIMLAPI_KEY>', TEST_KEY)
    .replaceAll('https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/t-rex.png', `${images.url}/red.png`)
    .replaceAll('https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/blue-mug.jpg', `${images.url}/red.jpg`);
  assert.ok(!out.includes('aimlapi.com') && !out.includes('githubusercontent'), 'every external address was replaced');
  return out;
}

async function checkOutput(stdout: string) {
  const body = JSON.parse(stdout);
  assert.equal(body.data.length, 1);
  assert.deepEqual(body.meta.usage, { credits_used: 91000, usd_spent: 0.0455 });
  const res = await fetch(body.data[0].url);
  assert.equal(res.status, 200);
  const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 1024, 768]); // landscape_4_3
}

test("the seed's Python example (requests) prints a 200 response whose url downloads a 1024x768 PNG", async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seed-py-')), 'example.py');
  fs.writeFileSync(file, adapt(fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/seed-examples/example.py'), 'utf8')));
  const { stdout } = await run('/usr/bin/python3', [file], { timeout: 60_000 });
  await checkOutput(stdout);
});

test("the seed's JavaScript example (fetch) prints a 200 response whose url downloads a 1024x768 PNG", async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seed-js-')), 'example.mjs');
  fs.writeFileSync(file, adapt(fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/seed-examples/example.mjs'), 'utf8')));
  const { stdout } = await run(process.execPath, [file], { timeout: 60_000 });
  await checkOutput(stdout);
});
