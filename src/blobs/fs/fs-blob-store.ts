/** Generated images on the local filesystem, under DATA_DIR/images. Keys are relative paths. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiError } from '../../domain/errors.ts';
import type { BlobStore } from '../../domain/ports.ts';

/** Errors that mean "there is no such file" for a key that passed SAFE_KEY (a path through a file, a name the filesystem refuses). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);
/** Errors that mean "the disk cannot take it": answered 507, and the partial file is removed. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);
/** Content types by file extension: the generated images' formats (output_format). */
const CONTENT_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' };

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export function createFsBlobStore(root: string): BlobStore {
  const resolve = (key: string): string | null => (SAFE_KEY.test(key) && !key.includes('..') ? path.join(root, key) : null);
  return {
    async put(key, data) {
      const file = resolve(key);
      if (!file) throw new Error(`invalid blob key "${key}"`);
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
      try {
        const data = await fs.readFile(file);
        return { data, contentType: CONTENT_TYPES[path.extname(key).slice(1)] ?? 'application/octet-stream' };
      } catch (err) {
        if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return null;
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
        if ((await fs.stat(path.join(root, key))).isFile()) keys.push(key);
      }
      return keys;
    },
  };
}
