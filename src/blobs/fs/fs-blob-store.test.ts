/** The filesystem blob store, on real temporary folders, passes the shared blob conformance suite. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBlobStoreConformance } from '../testing/blob-store-conformance.ts';
import { createFsBlobStore } from './fs-blob-store.ts';

runBlobStoreConformance('filesystem', {
  async open() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-blobs-'));
    return { store: createFsBlobStore(root), close: async () => fs.rmSync(root, { recursive: true, force: true }) };
  },
  presigns: false,
  checksSignatures: false,
  keepsAnyContentType: false,
});
