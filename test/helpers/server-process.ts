/**
 * The server as a real child process (`node --import tsx src/main.ts`), as an operator runs it: the
 * tests that need several processes (roles, scale-out) or a real `kill -9` start it this way, and so
 * does bench/scale.ts. A test file calls `after(killSpawnedServers)` so that a failed test leaves no
 * process behind (this module does not import node:test: a benchmark importing it must not become a test run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, TEST_KEY, TINY_MODEL_DIR } from './server.ts';

export interface SpawnedServer {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote so far (stdout and stderr together). */
  log(): string;
}

export interface ServerProcess extends SpawnedServer {
  /** The URL its "server ready" log line names (the API; a worker's health listener). */
  url: string;
}

const children: ChildProcess[] = [];

/** SIGKILL to every process started here that is still running. */
export function killSpawnedServers(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export function spawnServer(env: NodeJS.ProcessEnv): SpawnedServer {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, log: () => out };
}

/** Resolves with the server's URL once its log says "server ready"; rejects with its log if it exits first. */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const proc = spawnServer(env);
  const url = await new Promise<string>((resolve, reject) => {
    const look = () => {
      const line = proc.log().split('\n').find((l) => l.includes('"msg":"server ready"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    };
    proc.child.stdout!.on('data', look);
    proc.child.stderr!.on('data', look);
    void proc.exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before it was ready:\n${proc.log().slice(-3000)}`)));
  });
  return { ...proc, url };
}

/** The environment of a test server process: loopback, a free port, the test key, the tiny model, info logs. */
export function serverProcessEnv(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    API_KEYS: TEST_KEY,
    BUILTIN_MODEL_DIR: TINY_MODEL_DIR,
    ORT_THREADS: '1',
    LOG_LEVEL: 'info',
    ...extra,
  };
}
