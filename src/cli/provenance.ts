/**
 * Content-credential commands (through src/cli/main.ts):
 *   cli provenance dev-cert [--out DIR]   a development root CA and an ES256 signing certificate issued by it
 *   cli provenance verify <image file>    offline: C2PA manifest, invisible mark, and (operator view) the
 *                                         generation the mark points to in the server's ledger: Postgres with
 *                                         DATABASE_URL, else DATA_DIR/server.sqlite (never created by verify)
 * verify reads the same settings as the server: C2PA_TRUST_ANCHORS, WATERMARK_KEY, WATERMARK_ISSUER_ID, DATA_DIR,
 * DATABASE_URL.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/config.ts';
import { createWatermarker } from '../images/watermark/index.ts';
import { createDevCertificateChain, createManifestReader, createVerifyImage, readPemSetting, type VerifyReport } from '../provenance/index.ts';
import { openStores } from '../store/open-stores.ts';
import { describeDatabaseUrl } from '../store/postgres/pool.ts';
import { decodeFile } from './watermark-detect.ts';

export interface DevCertFiles {
  cert: string;
  key: string;
  ca: string;
}

/** Writes cert.pem, key.pem (mode 600) and ca.pem into `outDir`; refuses to replace an existing key. */
export function writeDevCertificate(outDir: string): DevCertFiles {
  const files = { cert: path.join(outDir, 'cert.pem'), key: path.join(outDir, 'key.pem'), ca: path.join(outDir, 'ca.pem') };
  if (fs.existsSync(files.key)) throw new Error(`${files.key} exists; remove it or choose another --out`);
  const chain = createDevCertificateChain();
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(files.key, chain.keyPem, { mode: 0o600 });
  fs.writeFileSync(files.cert, chain.certPem);
  fs.writeFileSync(files.ca, chain.caPem);
  return files;
}

/** The offline verification of one file, with the operator's view of the trace (every key's rows). */
export async function verifyFile(filePath: string, config: Config): Promise<VerifyReport & { file: string; ledger: string | null }> {
  const bytes = await readFile(filePath);
  const image = await decodeFile(filePath);
  const dbFile = path.join(config.dataDir, 'server.sqlite');
  const databaseUrl = config.database.url;
  // The server's store (src/store/open-stores.ts); opening SQLite would create a missing file, so no file: no ledger.
  // The key store is never used here: a throwaway hash key, so verify makes no DATA_DIR/key-hash-secret either.
  const stores =
    databaseUrl !== undefined || fs.existsSync(dbFile) ? await openStores({ databaseUrl, sqlitePath: dbFile, hashKey: crypto.randomBytes(32), poolMax: 1 }) : null;
  const ledger = stores === null ? null : databaseUrl !== undefined ? describeDatabaseUrl(databaseUrl) : dbFile;
  try {
    const verifyImage = createVerifyImage({
      readManifest: createManifestReader({ trustAnchorsPem: config.c2pa.trustAnchors ? readPemSetting('C2PA_TRUST_ANCHORS', config.c2pa.trustAnchors) : null }),
      watermarker: createWatermarker(config.watermark.key ? { key: config.watermark.key } : {}),
      ledger: stores?.markLedger ?? null,
      issuerId: config.watermark.issuerId,
    });
    const report = await verifyImage(bytes, image, { kind: 'operator' });
    return { file: filePath, ledger, ...report };
  } finally {
    await stores?.close();
  }
}

/** Exit status of `verify`: 0 a valid or trusted manifest or our mark was found, 1 neither (or an invalid manifest only). */
export function verifyExitCode(report: VerifyReport): number {
  const manifestOk = report.manifest.present && report.manifest.state !== 'invalid';
  return manifestOk || report.watermark.detected ? 0 : 1;
}
