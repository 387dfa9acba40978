/**
 * `npm start` (scripts/start.sh) must leave the server in the process it started: the signals a supervisor sends
 * (SIGTERM to drain, SIGKILL to stop) go to that pid. The tsx binary would run the server as a child of itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, TINY_MODEL_DIR, TEST_KEY } from '../helpers/server.ts';

/** Every process below `pid`, with its command line (Linux /proc). */
function descendants(pid: number): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  const pending = [pid];
  while (pending.length > 0) {
    const parent = pending.pop()!;
    for (const task of fs.readdirSync(`/proc/${parent}/task`)) {
      let children: string;
      try {
        children = fs.readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue; // the thread ended meanwhile
      }
      for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
        let cmdline = '';
        try {
          cmdline = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' ');
        } catch {
          // ended meanwhile
        }
        found.push({ pid: child, cmdline });
        pending.push(child);
      }
    }
  }
  return found;
}

test('scripts/start.sh execs the server itself: no child runs src/main.ts, and SIGTERM to its pid drains and exits 0', { skip: !fs.existsSync('/proc/self/task') && 'needs Linux /proc' }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-start-'));
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, API_KEYS: TEST_KEY, BUILTIN_MODEL_DIR: TINY_MODEL_DIR, LOG_LEVEL: 'info' };
  const child = spawn('bash', [path.join(REPO_ROOT, 'scripts/start.sh')], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('server ready')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`exited ${code} before ready: ${out.slice(-1500)}`)));
  });
  try {
    await ready;
    const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').join(' ');
    assert.match(cmdline, /src\/main\.ts/, 'the pid npm start got is the server');
    const servers = descendants(child.pid!).filter((p) => p.cmdline.includes('src/main.ts'));
    assert.deepEqual(servers, [], 'no child process runs the server');
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out.slice(-1500));
});
