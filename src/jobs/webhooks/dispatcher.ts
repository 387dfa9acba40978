/**
 * Sends the webhook outbox: each due delivery is POSTed, signed per Standard Webhooks
 * (https://www.standardwebhooks.com, spec 1.0.0), and its outcome written back to the outbox, which
 * is the only state that survives a restart. Delivery is at-least-once; the `webhook-id` (the
 * delivery id, the same on every retry) is what lets a receiver drop duplicates.
 *
 * Status handling follows the spec's "Delivery success and failure": 2xx is delivered; a 3xx is a
 * failure (redirects are not followed: the receiver should update its URL); 410 Gone means "send no
 * more", so the delivery fails at once; anything else, a timeout, a connection error or a refused
 * address is retried with exponential backoff and jitter, honouring `Retry-After` when it asks for
 * longer.
 *
 * URLs come from callers, so every connection goes through the SSRF policy of images/address-policy.ts:
 * names are checked at connect time by the agent's lookup (covering DNS rebinding), and IP literals,
 * which never reach a lookup, are checked here before sending.
 */
import net from 'node:net';
import { Agent, request } from 'undici';
import { ApiError } from '../../domain/errors.ts';
import { ForbiddenAddressError, createSafeLookup, isPublicAddress } from '../../images/address-policy.ts';
import type { WebhookDelivery, WebhookOutbox } from '../ports.ts';
import { signWebhook } from './signature.ts';

export interface DispatcherLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RetryPolicy {
  /** Delay after the first failed attempt; doubles after each further failure. */
  baseDelayMs: number;
  /** Cap on one delay, before jitter. */
  maxDelayMs: number;
  /** Attempts in all, the first included; the delivery fails after the last one fails. */
  maxAttempts: number;
}

/**
 * With these defaults the delays after attempts 1..17 are 5 s, 10 s, 20 s, … 2560 s (attempts 1–10,
 * 5115 s in all), then 3600 s seven times (25 200 s): 30 315 s = 8 h 25 min 15 s from the first
 * attempt to the 18th, before jitter. With ±20 % jitter on each delay the span lies between
 * 6 h 44 min and 10 h 6 min, plus the time the attempts themselves take (at most timeoutMs each).
 */
export const DEFAULT_RETRY: RetryPolicy = { baseDelayMs: 5_000, maxDelayMs: 3_600_000, maxAttempts: 18 };

/** The spec recommends 15–30 s; 10 s keeps a slow receiver from holding a send slot for long. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** Sends at once, so one slow receiver cannot take every socket and a backlog cannot flood the host. */
const DEFAULT_MAX_IN_FLIGHT = 8;

/**
 * Longest sleep between looks at the outbox, even when nothing is due: a delivery written by another
 * process (a worker, while this one serves the API) is found within this time without a kick.
 */
const MAX_SLEEP_MS = 60_000;

/** After the outbox itself fails (database locked, disk full), wait this long before looking again. */
const ERROR_PAUSE_MS = 5_000;

/** ±20 %: spreads retries of deliveries that failed together (one receiver outage) apart. */
const JITTER = 0.2;

/** The common practical URL limit (browsers, CDNs); a longer webhook URL is a mistake or an abuse. */
const MAX_URL_LENGTH = 2048;

const USER_AGENT = 'qwen-image-server';

export interface WebhookDispatcherDeps {
  outbox: WebhookOutbox;
  /** The signing secret (`whsec_...`) of the key that owns the delivery; null when it has none. */
  secretFor(keyId: string): Promise<string | null>;
  /** The JSON body of the delivery; null when the job it announces no longer exists. */
  renderBody(delivery: WebhookDelivery): Promise<string | null>;
  /** Lets webhooks reach loopback and private networks (a receiver on the same host or LAN). */
  allowPrivate: boolean;
  /** Whole-attempt limit: connect, send, and the response headers. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  maxInFlight?: number;
  logger: DispatcherLogger;
  /** ms since epoch */
  now?: () => number;
  /** [0, 1), for the jitter */
  random?: () => number;
}

export interface WebhookDispatcher {
  /** Starts the loop that sends deliveries as they come due. */
  start(): void;
  /** A delivery may have just been written: look now instead of at the next planned wake-up. */
  kick(): void;
  /** Stops the loop and waits for the sends in flight to be recorded. */
  close(): Promise<void>;
  /** One pass over what is due now, awaiting the sends it started; the number started. */
  deliverDue(): Promise<number>;
}

// ---------------------------------------------------------------- URL policy
function literalAddress(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return net.isIP(bare) ? bare : null;
}

/** RFC 6761 §6.3: `localhost` and every name under it are loopback. */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Why a URL can never be sent to under this policy, or null. Only what cannot change between now and
 * the send: what a name resolves to is the agent's lookup's business, at connect time.
 */
function urlProblem(raw: string, allowPrivate: boolean): string | null {
  if (raw.length > MAX_URL_LENGTH) return `is longer than ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a valid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `uses ${url.protocol} — only http and https are allowed`;
  if (url.username || url.password) return 'must not carry credentials in the URL';
  const literal = literalAddress(url.hostname);
  if (literal !== null && !allowPrivate && !isPublicAddress(literal)) return `points to a non-public address (${literal})`;
  return null;
}

/**
 * Checks a webhook URL a caller gives (submit, PUT /v1/webhooks) so that a URL which could never be
 * delivered to is refused with the request, not discovered hours of retries later.
 */
export function validateWebhookUrl(url: string, allowPrivate: boolean, param: string): void {
  const problem = urlProblem(url, allowPrivate);
  if (problem) throw new ApiError('invalid_value', `${param} ${problem}`, { param });
  // Caught here for a clear answer; at send time the lookup refuses it anyway (it resolves to loopback).
  if (!allowPrivate && isLocalhostName(new URL(url).hostname)) {
    throw new ApiError('invalid_value', `${param} points to localhost, a non-public address`, { param });
  }
}

// ---------------------------------------------------------------- one attempt
type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; error: string; status: number | null; retryAfterMs: number | null }
  | { kind: 'failed'; error: string; status: number | null };

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function findForbidden(err: unknown): ForbiddenAddressError | null {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof ForbiddenAddressError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : null;
}

export function createWebhookDispatcher(deps: WebhookDispatcherDeps): WebhookDispatcher {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...deps.retry };
  const maxInFlight = deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const { outbox, logger } = deps;

  const agent = new Agent({
    connect: { lookup: createSafeLookup(deps.allowPrivate), timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });

  /** Delay before attempt `failed + 1`, after `failed` attempts failed. Capped first, then jittered. */
  function backoffMs(failed: number): number {
    const capped = Math.min(retry.baseDelayMs * 2 ** (failed - 1), retry.maxDelayMs);
    return Math.round(capped * (1 + (random() * 2 - 1) * JITTER));
  }

  async function post(delivery: WebhookDelivery, secret: string, body: string): Promise<Outcome> {
    const timestampS = Math.floor(now() / 1000);
    const deadline = AbortSignal.timeout(timeoutMs);
    let res;
    try {
      res = await request(delivery.url, {
        method: 'POST',
        dispatcher: agent,
        signal: deadline,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': delivery.id,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': signWebhook(secret, delivery.id, timestampS, body),
        },
      });
    } catch (err) {
      const forbidden = findForbidden(err);
      if (forbidden) return { kind: 'retry', error: forbidden.message, status: null, retryAfterMs: null };
      if (deadline.aborted || TIMEOUT_CODES.has((err as { code?: string }).code ?? '')) {
        return { kind: 'retry', error: `no answer within ${timeoutMs} ms`, status: null, retryAfterMs: null };
      }
      const code = (err as { code?: string }).code;
      return { kind: 'retry', error: `could not send: ${code ?? (err as Error).message}`, status: null, retryAfterMs: null };
    }
    // The answer's body means nothing to us; draining a little of it lets the socket be reused. The
    // status has arrived, so an error while draining changes nothing about the outcome.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    const status = res.statusCode;
    if (status >= 200 && status < 300) return { kind: 'delivered', status };
    if (status === 410) return { kind: 'failed', error: 'the receiver answered 410 Gone: it wants no more deliveries', status };
    const error = status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed: update the webhook URL)` : `HTTP ${status}`;
    return { kind: 'retry', error, status, retryAfterMs: parseRetryAfterMs(res.headers['retry-after'], now()) };
  }

  async function attempt(delivery: WebhookDelivery): Promise<Outcome> {
    const problem = urlProblem(delivery.url, deps.allowPrivate);
    if (problem) return { kind: 'failed', error: `the URL ${problem}`, status: null };
    const body = await deps.renderBody(delivery);
    if (body === null) return { kind: 'failed', error: 'job no longer exists', status: null };
    const secret = await deps.secretFor(delivery.keyId);
    // Never send unsigned: the receiver could not tell it from a forgery.
    if (secret === null) return { kind: 'failed', error: 'the API key has no webhook secret', status: null };
    return post(delivery, secret, body);
  }

  /** Writes the outcome of attempt number `attempts` (every pass that takes a delivery up counts one). */
  async function record(delivery: WebhookDelivery, attempts: number, outcome: Outcome): Promise<void> {
    const log = { deliveryId: delivery.id, jobId: delivery.jobId, eventType: delivery.eventType, attempt: attempts };
    if (outcome.kind === 'delivered') {
      await outbox.markDelivered(delivery.id, attempts, outcome.status);
      logger.info({ ...log, status: outcome.status }, 'webhook delivered');
      return;
    }
    if (outcome.kind === 'failed') {
      await outbox.markFailed(delivery.id, attempts, outcome.error, outcome.status);
      logger.warn({ ...log, status: outcome.status, error: outcome.error }, 'webhook failed');
      return;
    }
    if (attempts >= retry.maxAttempts) {
      const error = `gave up after ${attempts} attempts: ${outcome.error}`;
      await outbox.markFailed(delivery.id, attempts, error, outcome.status);
      logger.warn({ ...log, status: outcome.status, error }, 'webhook failed');
      return;
    }
    const delayMs = Math.max(backoffMs(attempts), Math.min(outcome.retryAfterMs ?? 0, retry.maxDelayMs));
    await outbox.markRetry(delivery.id, attempts, now() + delayMs, outcome.error, outcome.status);
    logger.info({ ...log, status: outcome.status, error: outcome.error, retryInMs: delayMs }, 'webhook attempt failed; will retry');
  }

  // ---------------------------------------------------------------- scheduling
  const inFlight = new Map<string, Promise<void>>();
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let ticking: Promise<void> | null = null;
  let rerun = false;
  /** Set when the outbox failed: the loop waits until then instead of spinning on a broken database. */
  let pausedUntilMs = 0;
  let closing: Promise<void> | null = null;

  async function handle(delivery: WebhookDelivery): Promise<void> {
    const attempts = delivery.attempts + 1;
    let outcome: Outcome;
    try {
      outcome = await attempt(delivery);
    } catch (err) {
      // renderBody or secretFor failed: our fault, not the receiver's; retried like any failure.
      logger.error({ err, deliveryId: delivery.id, jobId: delivery.jobId }, 'could not prepare webhook');
      outcome = { kind: 'retry', error: `internal error: ${(err as Error).message}`, status: null, retryAfterMs: null };
    }
    try {
      await record(delivery, attempts, outcome);
    } catch (err) {
      // The delivery stays pending as it was and is tried again (a duplicate the webhook-id lets the receiver drop).
      logger.error({ err, deliveryId: delivery.id }, 'could not record webhook outcome');
      pausedUntilMs = now() + ERROR_PAUSE_MS;
    }
  }

  /** Starts sends for due deliveries up to the in-flight limit; the promises of those started. */
  async function startDue(): Promise<Array<Promise<void>>> {
    if (maxInFlight - inFlight.size <= 0) return [];
    // Deliveries in flight are still pending (and due) in the outbox: at most inFlight.size of these
    // rows are among them, so maxInFlight rows hold every free slot's worth of new ones.
    const due = await outbox.due(now(), maxInFlight);
    const started: Array<Promise<void>> = [];
    for (const delivery of due) {
      if (inFlight.size >= maxInFlight) break;
      if (inFlight.has(delivery.id)) continue;
      const sending = handle(delivery).finally(() => {
        inFlight.delete(delivery.id);
        wake();
      });
      inFlight.set(delivery.id, sending);
      started.push(sending);
    }
    return started;
  }

  /** One look at the outbox; how long to sleep afterwards. */
  async function tick(): Promise<number> {
    if (now() < pausedUntilMs) return pausedUntilMs - now();
    await startDue();
    const next = await outbox.nextDueAtMs();
    if (next === null) return MAX_SLEEP_MS;
    const delayMs = next - now();
    // Due but not started means every slot is busy or the earliest due ones are in flight: a finishing
    // send wakes the loop, so a later delivery waits at most one send's timeout behind them.
    if (delayMs <= 0 && inFlight.size > 0) return MAX_SLEEP_MS;
    return Math.min(Math.max(delayMs, 0), MAX_SLEEP_MS);
  }

  function arm(delayMs: number): void {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!running) return;
    timer = setTimeout(runTick, delayMs);
    // The loop alone does not keep the process alive; the server's listener does, and close() stops it.
    timer.unref();
  }

  function runTick(): void {
    timer = null;
    ticking = (async () => {
      let delayMs: number;
      try {
        delayMs = await tick();
      } catch (err) {
        logger.error({ err }, 'webhook outbox could not be read');
        delayMs = ERROR_PAUSE_MS;
      }
      ticking = null;
      if (rerun) {
        rerun = false;
        delayMs = Math.min(delayMs, Math.max(0, pausedUntilMs - now()));
      }
      arm(delayMs);
    })();
  }

  function wake(): void {
    if (!running) return;
    if (ticking) {
      rerun = true;
      return;
    }
    arm(Math.max(0, pausedUntilMs - now()));
  }

  return {
    start() {
      if (running || closing) return;
      running = true;
      arm(0);
    },
    kick: wake,
    deliverDue: async () => {
      const started = await startDue();
      await Promise.all(started);
      return started.length;
    },
    close() {
      closing ??= (async () => {
        running = false;
        if (timer) clearTimeout(timer);
        timer = null;
        await ticking;
        // A send finishing can no longer start another (running is false), so this drains.
        while (inFlight.size > 0) await Promise.all(inFlight.values());
        await agent.close();
      })();
      return closing;
    },
  };
}
