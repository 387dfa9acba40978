/**
 * A real PostgreSQL 15 for tests: initdb in a temporary directory, the server on a free port of 127.0.0.1,
 * a fresh database per suite, everything stopped and removed afterwards (also when the test process exits
 * early). Binaries come from Debian's postgresql-15 package (setup.sh installs it); without them this throws,
 * it does not skip: a store suite that silently did not run would read as passing.
 *
 * initdb and postgres refuse to run as root, so under root both run as the `postgres` system user (the
 * temporary directory is handed to that user). fsync and synchronous commit are off: durability across a
 * power cut is not what these tests check, and it makes each commit far cheaper on a busy machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const POSTGRES_BIN_DIR = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/ */
  baseUrl: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** uid/gid of the `postgres` user when we are root (initdb refuses root), else undefined: run as ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as (initdb refuses root): run ./setup.sh, which installs Debian\'s postgresql-15');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPostgres(): Promise<TestPostgres> {
  for (const tool of ['initdb', 'postgres']) {
    if (!fs.existsSync(path.join(POSTGRES_BIN_DIR, tool))) {
      throw new Error(`PostgreSQL 15 is not installed (${path.join(POSTGRES_BIN_DIR, tool)} is missing): run ./setup.sh, or apt-get install postgresql-15`);
    }
  }
  const user = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-pg-'));
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const dataDir = path.join(dir, 'data');
  const spawnOptions = { ...(user ?? {}), cwd: dir, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } };

  const init = spawnSync(path.join(POSTGRES_BIN_DIR, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], {
    ...spawnOptions,
    encoding: 'utf8',
  });
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr || init.stdout}`);
  }

  const port = await freePort();
  const server: ChildProcess = spawn(
    path.join(POSTGRES_BIN_DIR, 'postgres'),
    ['-D', dataDir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=32MB', '-c', 'max_connections=200'],
    { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  // A test process that ends without stop() (a crash, a failed before()) must not leave a server behind.
  const killOnExit = () => {
    server.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  // Ready when the server says so on its log (stderr), or failed when it exits first.
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString('utf8');
      if (log.includes('database system is ready to accept connections')) {
        server.stderr!.off('data', onData);
        resolve();
      }
    };
    server.stderr!.on('data', onData);
    server.stdout!.resume();
    void exited.then(() => reject(new Error(`postgres exited before it was ready:\n${log.slice(-4000)}`)));
  }).catch((err: unknown) => {
    process.off('exit', killOnExit);
    killOnExit();
    throw err;
  });
  // Keep draining its log so a full pipe never blocks the server.
  server.stderr!.resume();

  const baseUrl = `postgres://postgres@127.0.0.1:${port}/`;
  let stopping: Promise<void> | null = null;
  return {
    baseUrl,
    async createDatabase(prefix = 'qis') {
      const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: `${baseUrl}postgres` });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `${baseUrl}${name}`;
    },
    stop() {
      stopping ??= (async () => {
        // SIGINT is Postgres's "fast" shutdown: open connections are ended, no checkpoint wait on their clients.
        if (server.exitCode === null && server.signalCode === null) server.kill('SIGINT');
        await exited;
        process.off('exit', killOnExit);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
