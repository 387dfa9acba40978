/**
 * Images in S3, end to end: the real server started with BLOB_STORE=s3://... against s3rver (its own
 * process), credentials through the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
 * The bucket is looked at with a client of its own, not through the store under test.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { startS3rver, useS3rverCredentialsInEnv, type S3Endpoint } from '../helpers/s3.ts';
import { waitUntil } from '../helpers/wait-until.ts';

const body = { model: MODEL, prompt: 'a red house on grass', image_size: 'square', enhance_prompt: false, seed: 5 };

let s3: S3Endpoint;
let restoreEnv: () => void;
before(async () => {
  s3 = await startS3rver();
  restoreEnv = useS3rverCredentialsInEnv();
});
after(async () => {
  restoreEnv();
  await s3.stop();
});

/** The stored key of an image URL of this server: the path after /files/. */
function keyOfProxyUrl(url: string): string {
  return new URL(url).pathname.replace(/^\/files\//, '');
}

async function objectBytes(objectKey: string): Promise<{ data: Buffer; contentType: string | undefined }> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: objectKey }));
  return { data: Buffer.from(await res.Body!.transformToByteArray()), contentType: res.ContentType };
}

async function objectExists(objectKey: string): Promise<boolean> {
  try {
    await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: objectKey }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

async function assertPng(res: Response): Promise<Buffer> {
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  const png = Buffer.from(await res.arrayBuffer());
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 512);
  return png;
}

describe('BLOB_URLS=proxy (the default)', () => {
  const prefix = `e2e-${crypto.randomUUID()}/images`;
  let server: TestServer;
  before(async () => {
    server = await startTestServer(s3.env(prefix));
  });
  after(async () => {
    await server.close();
  });

  test('the image goes to the bucket with its content type, and the /files/ URL streams it from there', async () => {
    const res = await server.post('/v1/images/generations', body);
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const url: string = res.json.data[0].url;
    assert.match(url, new RegExp(`^${server.url}/files/generations/\\d+-[0-9a-f-]{36}\\.png$`));
    const stored = await objectBytes(`${prefix}/${keyOfProxyUrl(url)}`);
    assert.equal(stored.contentType, 'image/png');
    const downloaded = await assertPng(await fetch(url));
    assert.deepEqual(downloaded, stored.data, 'the download is the object in the bucket');
    // Nothing went to the filesystem store's folder.
    const localImages = path.join(server.dataDir, 'images');
    assert.deepEqual(fs.existsSync(localImages) ? fs.readdirSync(localImages, { recursive: true }) : [], []);
    assert.equal((await fetch(`${server.url}/files/generations/${crypto.randomUUID()}.png`)).status, 404);
  });

  test('an edit\'s reference image travels to the runner through the bucket and is removed after the job', async () => {
    const reference = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 200, b: 40 } } }).png().toBuffer();
    const res = await server.post('/v1/images/generations', { ...body, prompt: 'make it night', image_urls: [`data:image/png;base64,${reference.toString('base64')}`] });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    await assertPng(await fetch(res.json.data[0].url));
    // The runner read the reference back from the bucket (the filesystem never had it); it goes when the job ends.
    await waitUntil(async () => (await keysUnder(`${prefix}/inputs`)).length === 0, 'the job\'s reference blobs are deleted');
    const localImages = path.join(server.dataDir, 'images');
    assert.deepEqual(fs.existsSync(localImages) ? fs.readdirSync(localImages, { recursive: true }) : [], []);
  });
});

describe('BLOB_URLS=presigned', () => {
  const prefix = `e2e-${crypto.randomUUID()}/images`;
  let server: TestServer;
  before(async () => {
    server = await startTestServer(s3.env(prefix, { BLOB_URLS: 'presigned', BLOB_PRESIGN_TTL_S: '900' }));
  });
  after(async () => {
    await server.close();
  });

  test('the returned URL is a presigned GET of the bucket that downloads the PNG without the server', async () => {
    const res = await server.post('/v1/images/generations', body);
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const url = new URL(res.json.data[0].url);
    assert.equal(url.origin, s3.endpoint);
    assert.match(url.pathname, new RegExp(`^/${s3.bucket}/${prefix}/generations/\\d+-[0-9a-f-]{36}\\.png$`));
    assert.equal(url.searchParams.get('X-Amz-Expires'), '900');
    assert.ok(url.searchParams.get('X-Amz-Signature'));
    const downloaded = await assertPng(await fetch(url));
    // The server's own /files/ URL serves the same object, for clients that hold a key instead of a URL.
    const key = url.pathname.slice(`/${s3.bucket}/${prefix}/`.length);
    assert.deepEqual(await assertPng(await fetch(`${server.url}/files/${key}`)), downloaded);
  });
});

describe('retention deletes the object', () => {
  const prefix = `e2e-${crypto.randomUUID()}/images`;

  test('a job past JOB_RETENTION loses its image in the bucket, and its URL answers 404', async () => {
    // First run: the image is made and kept (a week's retention), so its presence is checked without racing the sweeper.
    const first = await startTestServer(s3.env(prefix));
    const res = await first.post('/v1/images/generations', body);
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const key = keyOfProxyUrl(res.json.data[0].url);
    assert.equal(await objectExists(`${prefix}/${key}`), true);
    await first.close();

    // Second run on the same data and bucket, with a retention of one second: the sweeper takes the job and its image.
    const second = await startTestServer({ ...s3.env(prefix, { JOB_RETENTION: '1s' }), DATA_DIR: first.dataDir });
    try {
      await waitUntil(async () => !(await objectExists(`${prefix}/${key}`)), 'the sweeper deletes the object', 50);
      const gone = await fetch(`${second.url}/files/${key}`);
      assert.equal(gone.status, 404);
      assert.equal((await gone.json()).error.code, 'not_found');
    } finally {
      await second.close();
    }
  });
});
