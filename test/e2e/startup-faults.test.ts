/**
 * A DATA_DIR the server cannot use stops the start with a message that names the problem (issue 13):
 * before, a file as DATA_DIR gave a misleading error, a read-only images/ started "healthy" and failed
 * every request, and a database from a newer release was used silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, REPO_ROOT, TEST_KEY, TINY_MODEL_DIR } from '../helpers/server.ts';

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

test('DATA_DIR that is a file: the process exits 1 and says so', async () => {
  const file = path.join(tmp('qis-datadir-'), 'not-a-dir');
  fs.writeFileSync(file, 'x');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', DATA_DIR: file, API_KEYS: TEST_KEY, BUILTIN_MODEL_DIR: TINY_MODEL_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 1, out);
  assert.match(out, /DATA_DIR .*not-a-dir exists and is not a directory/);
});

test('a database written by a newer release is refused, not used', async () => {
  const dataDir = tmp('qis-newer-');
  const db = new Database(path.join(dataDir, 'server.sqlite'));
  db.pragma('user_version = 999');
  db.close();
  await assert.rejects(startTestServer({ DATA_DIR: dataDir }), /schema version 999, newer than this server's \d+/);
});

function mountReadOnly(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

test('a read-only images/ stops the start instead of failing every request', async (t) => {
  const roDataDir = tmp('qis-ro-');
  fs.mkdirSync(path.join(roDataDir, 'images'));
  if (!(process.platform === 'linux' && mountReadOnly(path.join(roDataDir, 'images')))) {
    t.skip('cannot mount a read-only tmpfs here (needs root with CAP_SYS_ADMIN)');
    return;
  }
  try {
    await assert.rejects(startTestServer({ DATA_DIR: roDataDir }), /DATA_DIR: cannot write to .*images \(EROFS\)/);
  } finally {
    execFileSync('umount', [path.join(roDataDir, 'images')]);
  }
});
