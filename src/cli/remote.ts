/**
 * The CLI's client half: commands that talk to a running server over its public HTTP API (never the
 * database), so they work against any deployment the caller has a key for.
 *   cli generate --prompt TEXT [--size PRESET|WxH] [--seed N] [--negative TEXT] [--image FILE ...]
 *                [--watermark] [--out FILE] [--json]
 *   cli jobs list [--status S] [--limit N] [--after CURSOR] [--json]
 *   cli jobs cancel <job id> [--json]
 * Every command takes --url (default $QIS_URL, else http://127.0.0.1:8080) and --key (default $QIS_API_KEY).
 * Exit codes: 0 done, 1 the server refused or the job did not succeed, 2 bad flags, 130 interrupted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ProgressBar } from './progress-bar.ts';
import { createEventStreamParser } from '../contracts/event-stream-parser.ts';

export const REMOTE_HELP =
  'generate --prompt TEXT [--size landscape_4_3|WxH] [--seed N] [--negative TEXT] [--image FILE ...] [--watermark] [--out FILE] [--json]\n' +
  '  cli jobs list [--status queued|running|succeeded|failed|canceled] [--limit N] [--after CURSOR] [--json]\n' +
  '  cli jobs cancel <job id> [--json]\n' +
  '  (these talk to a running server: --url URL or QIS_URL, default http://127.0.0.1:8080; --key KEY or QIS_API_KEY)';

export class UsageError extends Error {}

/** The server's error object, or a transport failure dressed the same way. */
export class RemoteError extends Error {
  constructor(message: string, readonly param: string | null = null, readonly code: string | null = null, readonly status: number | null = null) {
    super(message);
  }
  describe(): string {
    const where = this.param ? ` (field: ${this.param})` : '';
    const what = [this.code, this.status ? `HTTP ${this.status}` : null].filter(Boolean).join(', ');
    return `error: ${this.message}${where}${what ? ` [${what}]` : ''}`;
  }
}

type FlagKind = 'string' | 'int' | 'bool' | 'list';
type Parsed = { flags: Record<string, string | number | boolean | string[]>; positional: string[] };

export function parseFlags(argv: string[], spec: Record<string, FlagKind>): Parsed {
  const flags: Parsed['flags'] = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name} (known: ${Object.keys(spec).map((f) => `--${f}`).join(', ')})`);
    if (kind === 'bool') {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) throw new UsageError(`--${name} needs a value`);
      i++;
    }
    if (kind === 'int') {
      if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
      flags[name] = Number(value);
    } else if (kind === 'list') {
      flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    } else {
      if (name in flags) throw new UsageError(`--${name} given twice`);
      flags[name] = value;
    }
  }
  return { flags, positional };
}

interface Connection {
  url: string;
  key: string;
}

const CONNECTION_FLAGS: Record<string, FlagKind> = { url: 'string', key: 'string' };

function connection(flags: Parsed['flags'], env: NodeJS.ProcessEnv): Connection {
  const raw = (flags.url as string | undefined) ?? env.QIS_URL ?? 'http://127.0.0.1:8080';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(raw)}`);
  const key = (flags.key as string | undefined) ?? env.QIS_API_KEY;
  if (!key) throw new UsageError('--key is missing: pass --key KEY or set QIS_API_KEY');
  return { url: raw.replace(/\/+$/, ''), key };
}

async function call(conn: Connection, method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> {
  let res: Response;
  try {
    res = await fetch(conn.url + pathname, {
      method,
      headers: { authorization: `Bearer ${conn.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new RemoteError(`cannot reach ${conn.url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below if the status is an error
  }
  if (!res.ok) {
    const e = json?.error;
    if (e && typeof e.message === 'string') throw new RemoteError(e.message, e.param ?? null, e.code ?? null, res.status);
    throw new RemoteError(`${method} ${pathname} answered ${res.status}: ${text.slice(0, 200)}`, null, null, res.status);
  }
  return json;
}

interface SseEvent {
  event: string;
  data: any;
}

/** Reads a job's event stream, calling `onEvent` for each event, until the server ends it. */
async function followEvents(conn: Connection, jobId: string, onEvent: (e: SseEvent) => void, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${conn.url}/v1/jobs/${encodeURIComponent(jobId)}/events`, {
      headers: { authorization: `Bearer ${conn.key}`, accept: 'text/event-stream' },
      signal,
    });
  } catch (err) {
    if (signal.aborted) return;
    throw new RemoteError(`cannot reach ${conn.url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let e: any;
    try {
      e = JSON.parse(text).error;
    } catch {
      e = null;
    }
    throw new RemoteError(e?.message ?? `event stream answered ${res.status}`, e?.param ?? null, e?.code ?? null, res.status);
  }
  const decoder = new TextDecoder();
  const feed = createEventStreamParser(onEvent);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) feed(decoder.decode(chunk, { stream: true }));
  } catch (err) {
    if (!signal.aborted) throw new RemoteError(`the event stream broke: ${(err as Error).message}`);
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);
const SIZE_PRESETS = ['square_hd', 'square', 'portrait_4_3', 'portrait_16_9', 'landscape_4_3', 'landscape_16_9'];

function sizeField(value: string): string | { width: number; height: number } {
  if (SIZE_PRESETS.includes(value)) return value;
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(value);
  if (!m) throw new UsageError(`--size must be one of ${SIZE_PRESETS.join(', ')} or WxH (e.g. 1024x768), got ${JSON.stringify(value)}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

function sniffMime(bytes: Buffer): string | null {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  if (bytes.subarray(0, 4).toString('latin1') === 'GIF8') return 'image/gif';
  if (bytes.subarray(4, 8).toString('latin1') === 'ftyp') return 'image/avif';
  return null;
}

/** A local file as a data: URI for image_urls (the server sniffs the content again and applies its limits). */
function imageDataUri(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`--image ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const mime = sniffMime(bytes);
  if (!mime) throw new UsageError(`--image ${file}: not a PNG, JPEG, WebP, GIF or AVIF file`);
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

function outputFormat(out: string | undefined): 'png' | 'jpeg' | 'webp' {
  const ext = out ? path.extname(out).toLowerCase() : '.png';
  if (ext === '' || ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.webp') return 'webp';
  throw new UsageError(`--out must end in .png, .jpg, .jpeg or .webp (the format is taken from it), got ${JSON.stringify(out)}`);
}

interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  /** Registers the Ctrl-C handler; returns the function that removes it. */
  onInterrupt: (handler: () => void) => () => void;
}

async function saveImage(conn: Connection, item: { url?: string; b64_json?: string }, file: string): Promise<void> {
  let bytes: Buffer;
  if (item.b64_json) bytes = Buffer.from(item.b64_json, 'base64');
  else if (item.url) {
    let res: Response;
    try {
      // The server's own file links need no key; sending it to the same origin is harmless, never to another one.
      const sameOrigin = new URL(item.url).origin === new URL(conn.url).origin;
      res = await fetch(item.url, { headers: sameOrigin ? { authorization: `Bearer ${conn.key}` } : {} });
    } catch (err) {
      throw new RemoteError(`cannot download ${item.url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    if (!res.ok) throw new RemoteError(`downloading ${item.url} answered ${res.status}`, null, null, res.status);
    bytes = Buffer.from(await res.arrayBuffer());
  } else throw new RemoteError('the job succeeded but its result holds no image');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

async function generate(argv: string[], io: Io): Promise<number> {
  const { flags, positional } = parseFlags(argv, {
    ...CONNECTION_FLAGS,
    prompt: 'string',
    size: 'string',
    seed: 'int',
    negative: 'string',
    image: 'list',
    watermark: 'bool',
    out: 'string',
    json: 'bool',
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])} (the prompt goes in --prompt)`);
  if (typeof flags.prompt !== 'string' || flags.prompt.trim() === '') throw new UsageError('--prompt is required');
  const conn = connection(flags, io.env);
  const out = flags.out as string | undefined;
  const body: Record<string, unknown> = {
    model: 'alibaba/qwen-image-2-0',
    prompt: flags.prompt,
    output_format: outputFormat(out),
  };
  if (flags.size !== undefined) body.image_size = sizeField(flags.size as string);
  if (flags.seed !== undefined) body.seed = flags.seed;
  if (flags.negative !== undefined) body.negative_prompt = flags.negative;
  if (flags.watermark) body.watermark = true;
  if (flags.image) body.image_urls = (flags.image as string[]).map(imageDataUri);

  const json = flags.json === true;
  const progress = new ProgressBar(io.stderr);
  let job: any = null;
  let interrupted = false;
  const stream = new AbortController();
  let cancelDone: Promise<void> | null = null;
  const cancel = () => {
    if (interrupted) return;
    interrupted = true;
    stream.abort();
    if (job) cancelDone = cancelJob();
  };
  const cancelJob = async () => {
    progress.note(`interrupted: canceling ${job.id}`);
    try {
      const after = await call(conn, 'POST', `/v1/jobs/${job.id}/cancel`);
      progress.note(`job ${job.id} ${after.status}`);
    } catch (err) {
      progress.note(err instanceof RemoteError ? err.describe() : String(err));
    }
  };
  const removeHandler = io.onInterrupt(cancel);
  try {
    job = await call(conn, 'POST', '/v1/images/generations', body, { prefer: 'respond-async' });
    progress.note(`job ${job.id} submitted`);
    if (interrupted) {
      await cancelJob();
      return 130;
    }
    let final: any = TERMINAL.has(job.status) ? job : null;
    if (job.status === 'queued') progress.update({ phase: 'queued', queuePosition: job.queue_position });
    // A stream that ends early (a proxy timeout, a server restart) is opened again; a finished job's stream is its end event.
    for (let attempt = 0; !final && !interrupted && attempt < 5; attempt++) {
      await followEvents(
        conn,
        job.id,
        (e) => {
          if (e.event === 'queued') progress.update({ phase: 'queued', queuePosition: e.data.queue_position });
          else if (e.event === 'running') progress.update({ phase: 'running' });
          else if (e.event === 'progress') progress.update({ phase: 'running', step: e.data.step, steps: e.data.steps });
          else if (TERMINAL.has(e.event)) final = e.data;
        },
        stream.signal,
      );
      if (!final && !interrupted) {
        const now = await call(conn, 'GET', `/v1/jobs/${job.id}`);
        if (TERMINAL.has(now.status)) final = now;
      }
    }
    if (interrupted) {
      await cancelDone;
      return 130;
    }
    progress.finish();
    if (!final) throw new RemoteError(`lost the event stream of ${job.id}; \`jobs list\` or GET /v1/jobs/${job.id} shows where it stands`);
    if (final.status !== 'succeeded') {
      const e = final.error;
      const err = e ? new RemoteError(e.message, e.param ?? null, e.code ?? null) : new RemoteError(`job ${final.id} ${final.status}`);
      if (json) io.stdout.write(JSON.stringify({ job_id: final.id, status: final.status, error: e ?? null }) + '\n');
      io.stderr.write(`job ${final.id} ${final.status}: ${err.describe()}\n`);
      return 1;
    }
    const item = final.result.data[0];
    const ext = final.input.output_format === 'jpeg' ? 'jpg' : final.input.output_format;
    const file = path.resolve(out ?? `qwen-image-${item.seed}.${ext}`);
    await saveImage(conn, item, file);
    const usage = final.result.meta?.usage ?? {};
    const summary = {
      job_id: final.id,
      status: final.status,
      seed: item.seed,
      credits_used: usage.credits_used,
      usd_spent: usage.usd_spent,
      path: file,
      width: final.input.image_size.width,
      height: final.input.image_size.height,
      revised_prompt: item.revised_prompt,
    };
    if (json) io.stdout.write(JSON.stringify(summary) + '\n');
    else {
      io.stdout.write(
        `job: ${summary.job_id}\nseed: ${summary.seed}\ncost: ${summary.credits_used} credits ($${summary.usd_spent})\nsaved: ${file} (${summary.width}x${summary.height})\n`,
      );
    }
    return 0;
  } finally {
    removeHandler();
    stream.abort();
  }
}

async function jobs(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'list') {
    const { flags, positional } = parseFlags(rest, { ...CONNECTION_FLAGS, status: 'string', limit: 'int', after: 'string', json: 'bool' });
    if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
    const conn = connection(flags, io.env);
    const query = new URLSearchParams();
    for (const name of ['status', 'limit', 'after']) if (flags[name] !== undefined) query.set(name, String(flags[name]));
    const page = await call(conn, 'GET', `/v1/jobs${query.size ? `?${query}` : ''}`);
    if (flags.json) {
      io.stdout.write(JSON.stringify(page) + '\n');
      return 0;
    }
    for (const j of page.data) {
      const where = j.status === 'queued' ? ` (${j.queue_position} ahead)` : j.status === 'running' && j.progress ? ` (step ${j.progress.step}/${j.progress.steps ?? '?'})` : '';
      const prompt = j.input.prompt.length > 60 ? `${j.input.prompt.slice(0, 57)}...` : j.input.prompt;
      io.stdout.write(
        `${j.id}  ${j.status}${where}  ${new Date(j.created_at).toISOString()}  ${j.input.image_size.width}x${j.input.image_size.height}  seed ${j.input.seed}  ${JSON.stringify(prompt)}\n`,
      );
    }
    if (page.data.length === 0) io.stderr.write('no jobs\n');
    if (page.has_more) io.stderr.write(`more: jobs list --after ${page.next_cursor}\n`);
    return 0;
  }
  if (command === 'cancel') {
    const { flags, positional } = parseFlags(rest, { ...CONNECTION_FLAGS, json: 'bool' });
    if (positional.length !== 1) throw new UsageError('jobs cancel takes one job id');
    const conn = connection(flags, io.env);
    const job = await call(conn, 'POST', `/v1/jobs/${encodeURIComponent(positional[0]!)}/cancel`);
    io.stdout.write(flags.json ? JSON.stringify(job) + '\n' : `${job.id} ${job.status}\n`);
    return 0;
  }
  throw new UsageError(`jobs takes list or cancel, got ${JSON.stringify(command ?? '')}`);
}

/** Runs `generate ...` or `jobs ...`; resolves with the exit code. */
export async function runRemote(argv: string[], io: Io): Promise<number> {
  const [group, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`usage:\n  cli ${REMOTE_HELP}\n`);
    return 0;
  }
  try {
    return group === 'generate' ? await generate(rest, io) : await jobs(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${err.message}\nusage:\n  cli ${REMOTE_HELP}\n`);
      return 2;
    }
    if (err instanceof RemoteError) {
      io.stderr.write(`${err.describe()}\n`);
      return 1;
    }
    throw err;
  }
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt: (handler) => {
      // The first Ctrl-C cancels the job; a second one, while that cancel is still in flight, leaves at once.
      let seen = 0;
      const listener = () => (++seen === 1 ? handler() : process.exit(130));
      process.on('SIGINT', listener);
      return () => process.off('SIGINT', listener);
    },
  };
}
