/**
 * What every blob store agrees on: which keys are valid, and the server's own download URL of a key.
 * Keys are relative paths of plain segments, so a key from a URL (`/files/<key>`) can never climb out of
 * the store's folder or bucket prefix, and reads the same on a filesystem and in S3.
 */

/** Segments of letters, digits, `.`, `_`, `-`, none starting with a dot or dash; at most 1024 bytes (S3's key limit). */
const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const MAX_KEY_BYTES = 1024;

export function isSafeBlobKey(key: string): boolean {
  return key.length <= MAX_KEY_BYTES && SAFE_KEY.test(key) && !key.includes('..');
}

/** The URL this server serves a blob at (src/http/routes/files.ts). */
export function proxyUrlFor(key: string, publicBaseUrl: string): string {
  return `${publicBaseUrl.replace(/\/+$/, '')}/files/${key}`;
}
