/** Generated images on the local filesystem, under DATA_DIR/images. Keys are relative paths. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../../domain/ports.ts';

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
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, file);
    },
    async get(key) {
      const file = resolve(key);
      if (!file) return null;
      try {
        const data = await fs.readFile(file);
        return { data, contentType: CONTENT_TYPES[path.extname(key).slice(1)] ?? 'application/octet-stream' };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
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
