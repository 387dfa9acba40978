/**
 * The S3 blob store against a real S3 endpoint (s3rver in its own process): the shared blob conformance
 * suite, then what only a bucket has (the object as stored, access errors, HeadBucket).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { isApiError } from '../../domain/errors.ts';
import { runBlobStoreConformance } from '../testing/blob-store-conformance.ts';
import { startS3rver, S3RVER_CREDENTIALS, S3RVER_REGION, type S3Endpoint } from '../../../test/helpers/s3.ts';
import { createS3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.ts';

let s3: S3Endpoint;
before(async () => {
  s3 = await startS3rver();
});
after(async () => {
  await s3.stop();
});

/** A store over a fresh prefix of the shared bucket, so each test starts empty. */
function storeOver(overrides: Partial<S3BlobStoreOptions> = {}) {
  return createS3BlobStore({
    bucket: s3.bucket,
    prefix: `t-${crypto.randomUUID()}/images`,
    endpoint: s3.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    urls: 'proxy',
    presignTtlS: 3600,
    credentials: S3RVER_CREDENTIALS,
    ...overrides,
  });
}

runBlobStoreConformance('s3 (s3rver)', {
  async open(options) {
    const store = storeOver({ urls: options.urls, presignTtlS: options.presignTtlS, listPageSize: options.listPageSize, now: options.now });
    return { store, close: () => store.close() };
  },
  presigns: true,
  checksSignatures: false,
  keepsAnyContentType: true,
});

describe('s3 blob store: the bucket itself', () => {
  it('stores the object under the prefix with its content type and cache header', async () => {
    const prefix = `t-${crypto.randomUUID()}/images`;
    const store = storeOver({ prefix });
    await store.put('generations/1-x.png', Buffer.from('png bytes'), 'image/png');
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/generations/1-x.png` }));
    assert.equal(head.ContentType, 'image/png');
    assert.equal(head.ContentLength, 9);
    assert.equal(head.CacheControl, 'public, max-age=31536000, immutable');
    await store.close();
  });

  it('an empty prefix puts keys at the bucket root', async () => {
    const store = storeOver({ prefix: '' });
    const key = `generations/${crypto.randomUUID()}.png`;
    await store.put(key, Buffer.from('x'), 'image/png');
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.equal(head.ContentType, 'image/png');
    assert.ok((await store.list('generations/')).includes(key));
    await store.delete(key);
    await store.close();
  });

  it('ping answers for the bucket and refuses a missing one', async () => {
    const store = storeOver();
    await store.ping();
    const missing = storeOver({ bucket: 'no-such-bucket' });
    await assert.rejects(missing.ping(), (err: unknown) => isApiError(err) && err.code === 'blob_store_unavailable' && err.status === 503);
    await Promise.all([store.close(), missing.close()]);
  });

  it('a key the endpoint does not know is a 503 naming the operation, for puts and reads', async () => {
    const store = storeOver({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'x' } });
    const isUnavailable = (operation: string) => (err: unknown) =>
      isApiError(err) && err.code === 'blob_store_unavailable' && err.retryAfterS === 5 && err.message.includes(operation) && /InvalidAccessKeyId/.test(err.message);
    await assert.rejects(store.put('generations/a.png', Buffer.from('x'), 'image/png'), isUnavailable('PutObject'));
    await assert.rejects(store.get('generations/a.png'), isUnavailable('GetObject'));
    await assert.rejects(store.list('generations/'), isUnavailable('ListObjectsV2'));
    await store.close();
  });

  it('an endpoint that is not there is a 503 too, not a hang', async () => {
    // A port just released: nothing listens there.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const store = storeOver({ endpoint: `http://127.0.0.1:${port}` });
    await assert.rejects(store.get('generations/a.png'), (err: unknown) => isApiError(err) && err.code === 'blob_store_unavailable');
    await store.close();
  });
});

describe('s3 blob store: a missing bucket', () => {
  it('is an error for reads and deletes, not a missing key (a 404 of the files route would hide the misconfiguration)', async () => {
    const store = storeOver({ bucket: 'no-such-bucket' });
    const isNoBucket = (err: unknown) => isApiError(err) && err.code === 'blob_store_unavailable' && /NoSuchBucket/.test(err.message);
    await assert.rejects(store.get('generations/a.png'), isNoBucket);
    await assert.rejects(store.delete('generations/a.png'), isNoBucket);
    await assert.rejects(store.put('generations/a.png', Buffer.from('x'), 'image/png'), isNoBucket);
    await store.close();
  });
});
