/**
 * Fetches the bytes behind an `image_urls` item: http(s) URLs through an agent whose DNS lookup
 * refuses non-public addresses (checked at every connection, so redirects and rebinding are covered),
 * redirects followed by hand up to a limit, a whole-fetch timeout and a byte cap; `data:` URIs decoded
 * with the same cap. Every failure is an ApiError naming the item (`image_urls[1]`).
 */
import { Agent, request } from 'undici';
import ipaddr from 'ipaddr.js';
import { ApiError, isApiError } from '../domain/errors.ts';
import type { ImageInputConfig } from '../config/config.ts';
import { createSafeLookup, isPublicAddress, ForbiddenAddressError } from './address-policy.ts';

export interface ImageFetcher {
  fetchBytes(url: string, param: string, signal?: AbortSignal): Promise<Buffer>;
  close(): Promise<void>;
}

const DATA_URI = /^data:([^,;]*)((?:;[^,;=]+=[^,;]*)*)(;base64)?,/i;

function decodeDataUri(uri: string, param: string, maxBytes: number): Buffer {
  const m = DATA_URI.exec(uri);
  if (!m) throw new ApiError('invalid_image', `${param} is not a valid data: URI (expected data:image/...;base64,...)`, { param });
  if (!m[3]) throw new ApiError('invalid_image', `${param} must be base64-encoded (data:<type>;base64,...)`, { param });
  const payload = uri.slice(m[0].length).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw new ApiError('invalid_image', `${param} has invalid base64 data`, { param });
  }
  if (Math.floor((payload.length * 3) / 4) > maxBytes + 3) {
    throw new ApiError('image_too_large', `${param} is larger than the limit of ${maxBytes} bytes`, { param });
  }
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.length === 0) throw new ApiError('invalid_image', `${param} is empty`, { param });
  if (bytes.length > maxBytes) throw new ApiError('image_too_large', `${param} is ${bytes.length} bytes, more than the limit of ${maxBytes}`, { param });
  return bytes;
}

function literalHost(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(bare) ? bare : null;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const isTimeout = (err: unknown) => TIMEOUT_CODES.has((err as { code?: string }).code ?? '');

function findCause(err: unknown): unknown {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof ForbiddenAddressError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return err;
}

export function createImageFetcher(config: ImageInputConfig): ImageFetcher {
  const agent = new Agent({
    connect: { lookup: createSafeLookup(config.allowPrivateUrls), timeout: config.fetchTimeoutMs },
    headersTimeout: config.fetchTimeoutMs,
    bodyTimeout: config.fetchTimeoutMs,
  });

  function checkUrl(raw: string, param: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ApiError('invalid_value', `${param} is not a valid URL`, { param });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ApiError('image_url_forbidden', `${param} uses ${url.protocol} — only http and https are fetched`, { param });
    }
    if (url.username || url.password) {
      throw new ApiError('image_url_forbidden', `${param} must not carry credentials in the URL`, { param });
    }
    const literal = literalHost(url.hostname);
    if (literal !== null && !config.allowPrivateUrls && !isPublicAddress(literal)) {
      throw new ApiError('image_url_forbidden', `${param} points to a non-public address (${literal})`, { param });
    }
    return url;
  }

  async function fetchHttp(start: string, param: string, signal: AbortSignal | undefined): Promise<Buffer> {
    const timeout = AbortSignal.timeout(config.fetchTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let url = checkUrl(start, param);
    for (let hop = 0; ; hop++) {
      let res;
      try {
        res = await request(url, {
          method: 'GET',
          dispatcher: agent,
          signal: combined,
          headers: { accept: 'image/*', 'user-agent': 'qwen-image-server/0.1 (+image_urls fetcher)' },
        });
      } catch (err) {
        const cause = findCause(err);
        if (cause instanceof ForbiddenAddressError) {
          throw new ApiError('image_url_forbidden', `${param} ${cause.message}`, { param });
        }
        if (timeout.aborted || isTimeout(err)) throw new ApiError('image_fetch_failed', `${param} could not be fetched: no answer within ${config.fetchTimeoutMs} ms`, { param });
        if (signal?.aborted) throw err;
        const code = (err as { code?: string }).code;
        throw new ApiError('image_fetch_failed', `${param} could not be fetched: ${code ?? (err as Error).message}`, { param });
      }
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
        await res.body.dump();
        if (hop >= config.maxRedirects) {
          throw new ApiError('image_fetch_failed', `${param} could not be fetched: more than ${config.maxRedirects} redirects`, { param });
        }
        const location = Array.isArray(res.headers.location) ? res.headers.location[0]! : res.headers.location;
        let next: string;
        try {
          next = new URL(location, url).toString();
        } catch {
          throw new ApiError('image_fetch_failed', `${param} could not be fetched: the server redirected to an invalid URL`, { param });
        }
        url = checkUrl(next, param);
        continue;
      }
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new ApiError('image_fetch_failed', `${param} could not be fetched: the server answered HTTP ${res.statusCode}`, { param });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > config.maxBytes) {
        await res.body.dump();
        throw new ApiError('image_too_large', `${param} is ${declared} bytes, more than the limit of ${config.maxBytes}`, { param });
      }
      const chunks: Buffer[] = [];
      let total = 0;
      try {
        for await (const piece of res.body) {
          total += (piece as Buffer).length;
          if (total > config.maxBytes) {
            res.body.destroy();
            throw new ApiError('image_too_large', `${param} is more than the limit of ${config.maxBytes} bytes`, { param });
          }
          chunks.push(piece as Buffer);
        }
      } catch (err) {
        if (isApiError(err)) throw err;
        if (timeout.aborted || isTimeout(err)) throw new ApiError('image_fetch_failed', `${param} could not be fetched: not complete within ${config.fetchTimeoutMs} ms`, { param });
        if (signal?.aborted) throw err;
        throw new ApiError('image_fetch_failed', `${param} could not be fetched: ${(err as Error).message}`, { param });
      }
      if (total === 0) throw new ApiError('invalid_image', `${param} is empty (0 bytes)`, { param });
      return Buffer.concat(chunks, total);
    }
  }

  return {
    async fetchBytes(url, param, signal) {
      if (/^data:/i.test(url)) return decodeDataUri(url, param, config.maxBytes);
      return fetchHttp(url, param, signal);
    },
    async close() {
      await agent.close();
    },
  };
}
