/**
 * Blobs in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, s3rver in the tests) through the AWS SDK.
 * Every blob key lives under one key prefix of one bucket; the object keeps the content type given to
 * `put`. Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * AWS_PROFILE and ~/.aws, web identity, the instance's role) unless the caller passes some.
 */
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ApiError } from '../../domain/errors.ts';
import type { BlobStore } from '../../domain/ports.ts';
import { isSafeBlobKey, proxyUrlFor } from '../blob-key.ts';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slashes; '' for the bucket's root. */
  prefix: string;
  /** Custom endpoint (MinIO, R2, s3rver); undefined → AWS's endpoint for the region. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  urls: 'proxy' | 'presigned';
  /** Lifetime of presigned URLs, 1 s to 7 days. */
  presignTtlS: number;
  /** Replaces the SDK's default credential chain (tests against s3rver, whose only key is S3RVER/S3RVER). */
  credentials?: S3ClientConfig['credentials'];
  /** Keys per ListObjectsV2 page; S3's maximum (and default) is 1000. Tests use a small one to cross pages. */
  listPageSize?: number;
  /** Clock of presigned URLs' signing time, ms since epoch (tests: a URL signed in the past is already expired). */
  now?: () => number;
}

export interface S3BlobStore extends BlobStore {
  /** HeadBucket: resolves when the bucket exists and the credentials may use it. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Served from the bucket itself with presigned URLs: the keys hold a random UUID and are never rewritten. */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** Seconds a client waits before retrying when the bucket did not answer (the SDK already retried 3 times). */
const RETRY_AFTER_S = 5;

/** The key is not in the bucket (GetObject: NoSuchKey; HEAD answers carry no body, so only the status). A missing bucket is not that. */
function isMissingKey(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket');
}

export function createS3BlobStore(options: S3BlobStoreOptions): S3BlobStore {
  const { bucket } = options;
  const pageSize = options.listPageSize ?? 1000;
  const now = options.now ?? Date.now;
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // The SDK adds CRC32 checksums to every upload by default (since aws-sdk-js-v3 PR #6750, early 2025), which
    // several S3-compatible servers refuse (e.g. MinIO issue #20845). A custom endpoint gets checksums only where
    // the operation requires one; AWS itself keeps the SDK's default.
    ...(options.endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const, responseChecksumValidation: 'WHEN_REQUIRED' as const } : {}),
  });
  const keyPrefix = options.prefix === '' ? '' : `${options.prefix}/`;
  const objectKey = (key: string) => `${keyPrefix}${key}`;
  const where = `s3://${bucket}/${options.prefix}`;

  /** A failure of the bucket (network, 5xx after the SDK's retries, access denied) as the 503 a client should see. */
  const unavailable = (operation: string, err: unknown): ApiError =>
    new ApiError('blob_store_unavailable', `the image store did not answer (${operation}: ${(err as Error)?.name ?? 'error'}); try again later`, {
      retryAfterS: RETRY_AFTER_S,
      cause: Object.assign(err instanceof Error ? err : new Error(String(err)), { blobStore: where }),
    });

  return {
    async put(key, data, contentType) {
      if (!isSafeBlobKey(key)) throw new Error(`invalid blob key "${key}"`);
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey(key), Body: data, ContentType: contentType, ContentLength: data.length, CacheControl: CACHE_CONTROL }));
      } catch (err) {
        throw unavailable('PutObject', err);
      }
    },
    async get(key) {
      if (!isSafeBlobKey(key)) return null;
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
        // In Node the body is the HTTP response itself (an IncomingMessage): read as it arrives.
        const stream = res.Body as Readable | undefined;
        if (!stream) throw new Error('GetObject answered without a body');
        return { stream, contentType: res.ContentType ?? 'application/octet-stream', ...(res.ContentLength !== undefined ? { sizeBytes: res.ContentLength } : {}) };
      } catch (err) {
        if (isMissingKey(err)) return null;
        throw unavailable('GetObject', err);
      }
    },
    async delete(key) {
      if (!isSafeBlobKey(key)) return;
      try {
        // S3 answers 204 for a key that is not there: deleting twice is not an error.
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
      } catch (err) {
        if (isMissingKey(err)) return;
        throw unavailable('DeleteObject', err);
      }
    },
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: objectKey(prefix), MaxKeys: pageSize, ContinuationToken: token }));
        } catch (err) {
          throw unavailable('ListObjectsV2', err);
        }
        for (const object of page.Contents ?? []) {
          if (object.Key?.startsWith(keyPrefix)) keys.push(object.Key.slice(keyPrefix.length));
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    async urlFor(key, publicBaseUrl) {
      if (options.urls === 'proxy') return proxyUrlFor(key, publicBaseUrl);
      // Signed locally with the credentials: no request to the bucket, and nothing checks the object exists.
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }), { expiresIn: options.presignTtlS, signingDate: new Date(now()) });
    },
    async ping() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        throw unavailable('HeadBucket', err);
      }
    },
    async close() {
      client.destroy();
    },
  };
}
