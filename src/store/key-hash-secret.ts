/**
 * The server secret that keys the API-key hashes (HMAC-SHA256). KEY_HASH_SECRET when set; otherwise a random
 * 32-byte secret kept in DATA_DIR/key-hash-secret (mode 0600), made by whichever process (server or CLI) needs
 * it first. It lives outside the database on purpose: a copy of server.sqlite alone cannot be used to test
 * guesses of operator-chosen API_KEYS secrets. Changing it makes every stored key unusable.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const KEY_HASH_SECRET_FILE = 'key-hash-secret';

export function loadKeyHashSecret(configured: string | undefined, dataDir: string): Buffer {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  const file = path.join(dataDir, KEY_HASH_SECRET_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx': two processes starting at once cannot both write; the loser reads the winner's secret.
    fs.writeFileSync(file, crypto.randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = fs.readFileSync(file, 'utf8').trim();
  if (text.length < 16) throw new Error(`${file} holds no usable secret (delete it only if no key was made with it: every stored key depends on it)`);
  return Buffer.from(text, 'utf8');
}
