/**
 * A real redis-server for tests: Debian's package, on a free port, in a temporary directory, with
 * persistence off (`--save '' --appendonly no`), so each test file gets an empty server of its own.
 * `stop()` kills it and removes the directory; a failed start cleans up before it throws.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestRedis {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Runs redis-cli against the server (e.g. FLUSHALL between tests); returns its stdout. */
  cli(...args: string[]): string;
  /** kill -9, then a new server on the same port: with persistence off it starts empty, as a crashed Redis without AOF does. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function findBinary(name: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : null;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

export async function startRedis(): Promise<TestRedis> {
  const binary = findBinary('redis-server');
  if (!binary) {
    throw new Error('redis-server is not installed: the Redis tests need Debian\'s redis-server package (apt-get install redis-server)');
  }
  const cliBinary = findBinary('redis-cli');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-redis-'));
  const port = await freePort();
  let log = '';
  const spawnServer = () => {
    const server = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    server.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    return server;
  };
  let child = spawnServer();
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
  };
  const stop = async (): Promise<void> => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  /** Waits for PONG; a server that exits (port taken, bad flag) fails at once with its own log. */
  const answering = async (): Promise<void> => {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited at start:\n${log}`);
      if (await ping(port)) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    await answering();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    cli: (...args) => {
      if (!cliBinary) throw new Error("redis-cli is not installed (Debian's redis-tools package, a dependency of redis-server)");
      const run = spawnSync(cliBinary, ['-p', String(port), ...args], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${run.stderr}`);
      return run.stdout;
    },
    async restart() {
      await kill();
      child = spawnServer();
      await answering();
    },
    stop,
  };
}
