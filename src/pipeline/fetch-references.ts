/**
 * The references of an edit: fetched in parallel, decoded under the image work gate. The first one
 * that fails stops the others: fetches still running are aborted and decodes still waiting for the
 * gate never start, so a request that is already a 400 burns no more CPU.
 */
import type { RawImage } from '../domain/types.ts';
import { decodeImage, type DecodeLimits } from '../images/decode-image.ts';
import type { ImageFetcher } from '../images/fetch-image.ts';
import type { WorkGate } from '../images/work-gate.ts';

export interface FetchReferencesDeps {
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  gate: WorkGate;
  decode?: typeof decodeImage;
}

export async function fetchReferences(urls: string[], deps: FetchReferencesDeps, signal: AbortSignal): Promise<RawImage[]> {
  const decode = deps.decode ?? decodeImage;
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.all(
      urls.map(async (url, i) => {
        const param = `image_urls[${i}]`;
        try {
          const bytes = await deps.fetcher.fetchBytes(url, param, stop.signal);
          return await deps.gate.run(() => decode(bytes, deps.decodeLimits, param), stop.signal);
        } catch (err) {
          stop.abort(err);
          throw err;
        }
      }),
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
