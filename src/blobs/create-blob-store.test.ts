/** BLOB_STORE and its settings as config reads them (defaults, every refusal), and the store the factory builds. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readConfig, ConfigError, type BlobsConfig } from '../config/config.ts';
import { createBlobStore } from './create-blob-store.ts';
import { getBlobBuffer } from './get-blob-buffer.ts';

const blobsOf = (env: Record<string, string>): BlobsConfig => readConfig(env, '/srv').blobs;

describe('config.blobs', () => {
  test('default: the filesystem under DATA_DIR/images, proxy URLs', () => {
    assert.deepEqual(blobsOf({}), { kind: 'fs', root: undefined, urls: 'proxy' });
  });

  test('file:///abs/path names another folder', () => {
    assert.deepEqual(blobsOf({ BLOB_STORE: 'file:///var/lib/qis%20images/' }), { kind: 'fs', root: '/var/lib/qis images', urls: 'proxy' });
  });

  test('s3://bucket/prefix with AWS defaults: us-east-1, virtual-host addressing, proxy URLs, an hour for presigned ones', () => {
    assert.deepEqual(blobsOf({ BLOB_STORE: 's3://my-bucket/qis/images/' }), {
      kind: 's3', bucket: 'my-bucket', prefix: 'qis/images', endpoint: undefined, region: 'us-east-1', forcePathStyle: false, urls: 'proxy', presignTtlS: 3600,
    });
    assert.equal((blobsOf({ BLOB_STORE: 's3://my-bucket' }) as { prefix: string }).prefix, '');
  });

  test('S3_ENDPOINT turns path-style addressing on unless S3_FORCE_PATH_STYLE says otherwise', () => {
    const env = { BLOB_STORE: 's3://b-1/p', S3_ENDPOINT: 'http://127.0.0.1:9000/', S3_REGION: 'auto', BLOB_URLS: 'presigned', BLOB_PRESIGN_TTL_S: '604800' };
    assert.deepEqual(blobsOf(env), { kind: 's3', bucket: 'b-1', prefix: 'p', endpoint: 'http://127.0.0.1:9000', region: 'auto', forcePathStyle: true, urls: 'presigned', presignTtlS: 604800 });
    assert.equal((blobsOf({ ...env, S3_FORCE_PATH_STYLE: '0' }) as { forcePathStyle: boolean }).forcePathStyle, false);
  });

  test('bad values stop the start with the setting and the rule', () => {
    const refusals: Array<[Record<string, string>, RegExp]> = [
      [{ BLOB_STORE: 'gs://bucket' }, /BLOB_STORE must be s3:\/\/bucket\/prefix or file:\/\/\/absolute\/folder/],
      [{ BLOB_STORE: 'file://relative/x' }, /BLOB_STORE=file:\/\/ needs an absolute folder/],
      [{ BLOB_STORE: 's3://My_Bucket/x' }, /bucket "My_Bucket" is not a valid S3 bucket name/],
      [{ BLOB_STORE: 's3://ok-bucket/a/../b' }, /BLOB_STORE prefix "a\/..\/b" must be segments/],
      [{ BLOB_STORE: 's3://ok-bucket/a//b' }, /BLOB_STORE prefix/],
      [{ BLOB_URLS: 'cdn' }, /BLOB_URLS must be proxy or presigned, got "cdn"/],
      [{ BLOB_URLS: 'presigned' }, /BLOB_URLS=presigned needs an S3 BLOB_STORE/],
      [{ BLOB_STORE: 's3://ok-bucket', BLOB_PRESIGN_TTL_S: '604801' }, /BLOB_PRESIGN_TTL_S must be between 1 and 604800, got 604801/],
      [{ BLOB_STORE: 's3://ok-bucket', BLOB_PRESIGN_TTL_S: '0' }, /BLOB_PRESIGN_TTL_S must be between 1 and 604800/],
      [{ BLOB_STORE: 's3://ok-bucket', BLOB_PRESIGN_TTL_S: '1h' }, /BLOB_PRESIGN_TTL_S must be an integer/],
      [{ BLOB_STORE: 's3://ok-bucket', S3_ENDPOINT: 'localhost:9000' }, /S3_ENDPOINT must start with http:\/\/ or https:\/\//],
      [{ BLOB_STORE: 's3://ok-bucket', S3_REGION: 'US East' }, /S3_REGION must be a region name/],
      [{ BLOB_STORE: 's3://ok-bucket', S3_FORCE_PATH_STYLE: 'maybe' }, /S3_FORCE_PATH_STYLE must be 1\/0\/true\/false/],
    ];
    for (const [env, message] of refusals) {
      assert.throws(() => blobsOf(env), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
    }
  });
});

describe('createBlobStore', () => {
  test('the filesystem store defaults to DATA_DIR/images, and ping makes and checks the folder', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-blobs-'));
    const store = createBlobStore(blobsOf({}), { dataDir });
    await store.ping();
    await store.put('generations/a.png', Buffer.from('x'), 'image/png');
    assert.equal(fs.readFileSync(path.join(dataDir, 'images/generations/a.png'), 'utf8'), 'x');
    assert.equal((await getBlobBuffer(store, 'generations/a.png'))?.toString(), 'x');
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('file:/// puts blobs in that folder', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-blobs-root-'));
    const store = createBlobStore(blobsOf({ BLOB_STORE: `file://${root}` }), { dataDir: '/nonexistent' });
    await store.put('generations/b.png', Buffer.from('y'), 'image/png');
    assert.ok(fs.existsSync(path.join(root, 'generations/b.png')));
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('s3:// builds the S3 store: presigned URLs point at the endpoint, signed for the configured lifetime', async () => {
    const store = createBlobStore(blobsOf({ BLOB_STORE: 's3://ok-bucket/p', S3_ENDPOINT: 'http://127.0.0.1:1', BLOB_URLS: 'presigned', BLOB_PRESIGN_TTL_S: '120' }), {
      dataDir: '/nonexistent',
      s3Credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
    // Presigning is local: no request reaches the (absent) endpoint.
    const url = new URL(await store.urlFor('generations/c.png', 'http://server'));
    assert.equal(`${url.origin}${url.pathname}`, 'http://127.0.0.1:1/ok-bucket/p/generations/c.png');
    assert.equal(url.searchParams.get('X-Amz-Expires'), '120');
    assert.match(url.searchParams.get('X-Amz-Credential') ?? '', /^AKIDEXAMPLE\/\d{8}\/us-east-1\/s3\/aws4_request$/);
    await store.close();
  });
});
