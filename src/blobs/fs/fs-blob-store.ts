/** Blobs on the local filesystem (by default DATA_DIR/images). Keys are relative paths under the root. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiError } from '../../domain/errors.ts';
import type { BlobStore } from '../../domain/ports.ts';
import { isSafeBlobKey, proxyUrlFor } from '../blob-key.ts';

/** Errors that mean "there is no such file" for a safe key (a path through a file, a name the filesystem refuses). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);
/** Errors that mean "the disk cannot take it": answered 507, and the partial file is removed. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);
/**
 * A file keeps no content type, so it is read back from the key's extension: the generated images' formats
 * (output_format) and the references' raw pixels (pipeline/reference-blobs.ts).
 */
const CONTENT_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp', rgb: 'application/octet-stream' };
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export function contentTypeOfKey(key: string): string {
  return CONTENT_TYPES[path.extname(key).slice(1)] ?? DEFAULT_CONTENT_TYPE;
}

export function createFsBlobStore(root: string): BlobStore {
  const resolve = (key: string): string | null => (isSafeBlobKey(key) ? path.join(root, key) : null);
  return {
    async put(key, data, contentType) {
      const file = resolve(key);
      if (!file) throw new Error(`invalid blob key "${key}"`);
      // Refused rather than lost: a get would answer another type than the one given here.
      if (contentType !== contentTypeOfKey(key)) {
        throw new Error(`the filesystem blob store reads content types from the key's extension: "${key}" reads as ${contentTypeOfKey(key)}, not ${contentType}`);
      }
      await fs.mkdir(path.dirname(file), { recursive: true });
      // Write then rename: a reader never sees a half-written PNG.
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        await fs.writeFile(tmp, data);
        await fs.rename(tmp, file);
      } catch (err) {
        // A half-written temporary file would keep a full disk full.
        await fs.rm(tmp, { force: true }).catch(() => undefined);
        if (NO_SPACE.has((err as NodeJS.ErrnoException).code ?? '')) {
          throw new ApiError('insufficient_storage', 'the server has no space left to store the image; try again later', { cause: err });
        }
        throw err;
      }
    },
    async get(key) {
      const file = resolve(key);
      if (!file) return null;
      // Open first, so "missing" is known before anything is sent, and a delete after this point does not cut the read.
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(file, 'r');
      } catch (err) {
        if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return null;
        throw err;
      }
      try {
        // Linux opens a directory for reading; it is not a blob.
        const stat = await handle.stat();
        if (!stat.isFile()) {
          await handle.close();
          return null;
        }
        return { stream: handle.createReadStream(), contentType: contentTypeOfKey(key), sizeBytes: stat.size };
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
    },
    async delete(key) {
      const file = resolve(key);
      if (!file) return;
      await fs.rm(file, { force: true });
    },
    async list(prefix) {
      const dir = path.join(root, prefix);
      let entries: string[];
      try {
        entries = await fs.readdir(dir, { recursive: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const keys: string[] = [];
      for (const entry of entries) {
        const key = path.posix.join(prefix.replace(/\/+$/, ''), entry.split(path.sep).join('/'));
        // Directories are not blobs; a leftover `.tmp` from an interrupted put is swept like an orphan.
        // A file deleted since readdir is skipped, not an error (the sweep and retention run side by side).
        const stat = await fs.stat(path.join(root, key)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw err;
        });
        if (stat?.isFile()) keys.push(key);
      }
      return keys;
    },
    async urlFor(key, publicBaseUrl) {
      return proxyUrlFor(key, publicBaseUrl);
    },
  };
}
