/** The blob store BLOB_STORE names: a folder (default DATA_DIR/images) or an S3 bucket and prefix. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BlobsConfig } from '../config/config.ts';
import type { BlobStore } from '../domain/ports.ts';
import { createFsBlobStore } from './fs/fs-blob-store.ts';
import { createS3BlobStore, type S3BlobStoreOptions } from './s3/s3-blob-store.ts';

export interface ManagedBlobStore extends BlobStore {
  /** Resolves when the store can be used (the folder exists and is writable; the bucket answers HeadBucket). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface CreateBlobStoreOptions {
  /** DATA_DIR: the filesystem store's default root is its `images` folder. */
  dataDir: string;
  /** Tests: S3 credentials instead of the SDK's default chain. */
  s3Credentials?: S3BlobStoreOptions['credentials'];
  /** Tests: keys per ListObjectsV2 page. */
  s3ListPageSize?: number;
}

export function createBlobStore(config: BlobsConfig, options: CreateBlobStoreOptions): ManagedBlobStore {
  if (config.kind === 's3') {
    return createS3BlobStore({
      bucket: config.bucket,
      prefix: config.prefix,
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      urls: config.urls,
      presignTtlS: config.presignTtlS,
      credentials: options.s3Credentials,
      listPageSize: options.s3ListPageSize,
    });
  }
  const root = config.root ?? path.join(options.dataDir, 'images');
  return {
    ...createFsBlobStore(root),
    async ping() {
      await fs.mkdir(root, { recursive: true });
      await fs.access(root, fs.constants.W_OK);
    },
    async close() {},
  };
}
