/**
 * The conformance suite every BlobStore passes: the filesystem store and the S3 store (against s3rver in
 * the tests). Usage, in a *.test.ts file:
 *   runBlobStoreConformance('fs', { open: async (options) => ({ store, close }), presigns: false, ... });
 * `open` is called by each test and must give a store over an empty area (a fresh folder, a fresh key prefix).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import type { BlobStore } from '../../domain/ports.ts';
import { registerFileRoutes } from '../../http/routes/files.ts';
import { getBlobBuffer } from '../get-blob-buffer.ts';

export interface OpenBlobStoreOptions {
  urls: 'proxy' | 'presigned';
  /** Keys per listing page, where the store pages (S3); small, so a listing crosses pages. */
  listPageSize: number;
  presignTtlS: number;
  /** The store's clock (ms since epoch) for what it signs. */
  now?: () => number;
}

export interface BlobStoreHarness {
  open(options: OpenBlobStoreOptions): Promise<{ store: BlobStore; close(): Promise<void> }>;
  /** The store hands out presigned URLs with BLOB_URLS=presigned (S3); the filesystem has none. */
  presigns: boolean;
  /**
   * The endpoint refuses a presigned URL whose signature was altered. AWS S3, MinIO and R2 verify SigV4;
   * s3rver 3.7 does not (its authentication.js: "Signature version 4 calculation is unimplemented"), so the
   * suite checks the declared answer either way.
   */
  checksSignatures: boolean;
  /** Any content type given to put is kept (S3 stores it with the object); the filesystem reads it from the extension. */
  keepsAnyContentType: boolean;
}

const BASE = 'http://server.example:8080';
const PAGE = 2;
const TTL_S = 600;

async function withStore(harness: BlobStoreHarness, options: Partial<OpenBlobStoreOptions>, use: (store: BlobStore) => Promise<void>): Promise<void> {
  const { store, close } = await harness.open({ urls: 'proxy', listPageSize: PAGE, presignTtlS: TTL_S, ...options });
  try {
    await use(store);
  } finally {
    await close();
  }
}

function sha256(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** The files route alone, over a real socket, to fetch the URLs urlFor gives in proxy mode. */
async function serveFiles(store: BlobStore): Promise<{ url: string; close(): Promise<void> }> {
  // Closing drops the keep-alive socket fetch leaves open, instead of waiting out its 72 s timeout.
  const app = Fastify({ forceCloseConnections: true });
  registerFileRoutes(app, { blobs: store });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}

export function runBlobStoreConformance(name: string, harness: BlobStoreHarness): void {
  describe(`blob store conformance: ${name}`, () => {
    it('put then get returns the bytes, the content type and the size', async () => {
      await withStore(harness, {}, async (store) => {
        const blobs = [
          { key: 'generations/1-a.png', type: 'image/png', data: crypto.randomBytes(1000) },
          { key: 'generations/1-b.jpg', type: 'image/jpeg', data: crypto.randomBytes(10) },
          { key: 'generations/1-c.webp', type: 'image/webp', data: crypto.randomBytes(1) },
          { key: 'inputs/job_x-0.rgb', type: 'application/octet-stream', data: Buffer.alloc(0) },
        ];
        for (const b of blobs) await store.put(b.key, b.data, b.type);
        for (const b of blobs) {
          const got = await store.get(b.key);
          assert.ok(got, b.key);
          assert.equal(got.contentType, b.type, b.key);
          if (got.sizeBytes !== undefined) assert.equal(got.sizeBytes, b.data.length, b.key);
          const chunks: Buffer[] = [];
          for await (const chunk of got.stream) chunks.push(chunk as Buffer);
          assert.deepEqual(Buffer.concat(chunks), b.data, b.key);
        }
      });
    });

    it(harness.keepsAnyContentType ? 'keeps a content type the key does not suggest' : 'refuses a content type it could not give back', async () => {
      await withStore(harness, {}, async (store) => {
        if (harness.keepsAnyContentType) {
          await store.put('generations/notes', Buffer.from('hi'), 'text/plain; charset=utf-8');
          assert.equal((await store.get('generations/notes'))?.contentType, 'text/plain; charset=utf-8');
        } else {
          await assert.rejects(store.put('generations/x.png', Buffer.from('hi'), 'image/webp'), /content type/);
          assert.equal(await store.get('generations/x.png'), null, 'nothing stored');
        }
      });
    });

    it('a put to an existing key replaces it', async () => {
      await withStore(harness, {}, async (store) => {
        await store.put('generations/same.png', Buffer.from('first'), 'image/png');
        await store.put('generations/same.png', Buffer.from('second'), 'image/png');
        assert.equal((await getBlobBuffer(store, 'generations/same.png'))?.toString(), 'second');
      });
    });

    it('a large blob is streamed in chunks, not read whole', async () => {
      await withStore(harness, {}, async (store) => {
        const data = crypto.randomBytes(8 * 1024 * 1024);
        await store.put('generations/large.png', data, 'image/png');
        const got = await store.get('generations/large.png');
        assert.ok(got);
        const hash = crypto.createHash('sha256');
        let chunks = 0;
        let largestChunk = 0;
        let total = 0;
        for await (const chunk of got.stream) {
          chunks += 1;
          largestChunk = Math.max(largestChunk, (chunk as Buffer).length);
          total += (chunk as Buffer).length;
          hash.update(chunk as Buffer);
        }
        assert.equal(total, data.length);
        assert.equal(hash.digest('hex'), sha256(data));
        assert.ok(chunks > 1 && largestChunk <= 2 * 1024 * 1024, `${chunks} chunks, the largest ${largestChunk} bytes`);
      });
    });

    it('a missing key, or one no blob can have, reads as null', async () => {
      await withStore(harness, {}, async (store) => {
        assert.equal(await store.get('generations/missing.png'), null);
        assert.equal(await getBlobBuffer(store, 'generations/missing.png'), null);
        for (const bad of ['', '../x.png', 'generations/../x.png', '/etc/passwd', 'generations//x.png', '.hidden', `generations/${'a'.repeat(1100)}.png`]) {
          assert.equal(await store.get(bad), null, JSON.stringify(bad));
          await store.delete(bad);
          await assert.rejects(store.put(bad, Buffer.from('x'), 'application/octet-stream'), /invalid blob key/, JSON.stringify(bad));
        }
      });
    });

    it('delete removes the blob, and deleting again is not an error', async () => {
      await withStore(harness, {}, async (store) => {
        await store.put('generations/gone.png', Buffer.from('x'), 'image/png');
        await store.put('generations/kept.png', Buffer.from('y'), 'image/png');
        await store.delete('generations/gone.png');
        assert.equal(await store.get('generations/gone.png'), null);
        await store.delete('generations/gone.png');
        await store.delete('generations/never-was.png');
        assert.deepEqual(await store.list('generations/'), ['generations/kept.png']);
      });
    });

    it('list gives every key under a prefix, across pages, and nothing else', async () => {
      await withStore(harness, {}, async (store) => {
        const wanted = ['generations/1.png', 'generations/2.png', 'generations/3.png', 'generations/4.png', 'generations/5.png', 'generations/sub/6.png'];
        for (const key of wanted) await store.put(key, Buffer.from(key), 'image/png');
        await store.put('inputs/job_a-0.rgb', Buffer.from('r'), 'application/octet-stream');
        await store.put('generationsx.png', Buffer.from('r'), 'image/png');
        assert.ok(wanted.length > 2 * PAGE, 'more keys than two pages');
        assert.deepEqual((await store.list('generations/')).sort(), wanted);
        assert.deepEqual(await store.list('inputs/'), ['inputs/job_a-0.rgb']);
        assert.deepEqual(await store.list('nothing-here/'), []);
      });
    });

    it('urlFor in proxy mode is the server\'s /files/ URL, which serves the blob', async () => {
      await withStore(harness, { urls: 'proxy' }, async (store) => {
        const data = crypto.randomBytes(300_000);
        await store.put('generations/9-proxy.png', data, 'image/png');
        assert.equal(await store.urlFor('generations/9-proxy.png', BASE), `${BASE}/files/generations/9-proxy.png`);
        const files = await serveFiles(store);
        try {
          const res = await fetch(await store.urlFor('generations/9-proxy.png', files.url));
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('content-type'), 'image/png');
          assert.equal(res.headers.get('content-length'), String(data.length));
          assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
        } finally {
          await files.close();
        }
      });
    });

    if (!harness.presigns) return;

    it('urlFor in presigned mode is a URL of the bucket that plain fetch downloads, for its lifetime', async () => {
      await withStore(harness, { urls: 'presigned', presignTtlS: TTL_S }, async (store) => {
        const data = crypto.randomBytes(50_000);
        await store.put('generations/9-signed.webp', data, 'image/webp');
        const url = new URL(await store.urlFor('generations/9-signed.webp', BASE));
        assert.notEqual(url.origin, new URL(BASE).origin, 'not a URL of this server');
        assert.equal(url.searchParams.get('X-Amz-Expires'), String(TTL_S));
        assert.ok(url.searchParams.get('X-Amz-Signature'), 'signed');
        const res = await fetch(url);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'image/webp');
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
      });
    });

    it('a presigned URL past its lifetime is refused by the endpoint', async () => {
      // Signed two lifetimes ago: expired the moment it is made, no waiting.
      await withStore(harness, { urls: 'presigned', presignTtlS: TTL_S, now: () => Date.now() - 2 * TTL_S * 1000 }, async (store) => {
        await store.put('generations/9-old.png', Buffer.from('x'), 'image/png');
        const res = await fetch(await store.urlFor('generations/9-old.png', BASE));
        assert.equal(res.status, 403);
        assert.match(await res.text(), /expired/i);
      });
    });

    it(harness.checksSignatures ? 'a presigned URL with an altered signature is refused' : 'a presigned URL with an altered signature is accepted (the endpoint declares it checks no SigV4 signatures)', async () => {
      await withStore(harness, { urls: 'presigned' }, async (store) => {
        await store.put('generations/9-tampered.png', Buffer.from('x'), 'image/png');
        const url = new URL(await store.urlFor('generations/9-tampered.png', BASE));
        const signature = url.searchParams.get('X-Amz-Signature')!;
        url.searchParams.set('X-Amz-Signature', `${signature[0] === '0' ? '1' : '0'}${signature.slice(1)}`);
        const res = await fetch(url);
        await res.arrayBuffer();
        assert.equal(res.status, harness.checksSignatures ? 403 : 200);
      });
    });
  });
}
