import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../domain/errors.ts';
import type { RawImage } from '../domain/types.ts';
import { deferred } from '../engines/testing/scripted-engine.ts';
import type { ImageFetcher } from '../images/fetch-image.ts';
import { createWorkGate } from '../images/work-gate.ts';
import { fetchReferences } from './fetch-references.ts';

const LIMITS = { maxPixels: 1_000_000, maxSidePx: 1024 };
const tiny: RawImage = { width: 1, height: 1, data: new Uint8Array(3) };

describe('fetchReferences', () => {
  it('once one reference fails, the decodes still waiting never start and the other fetches are aborted', async () => {
    const gate = createWorkGate({ concurrency: 1, maxQueue: 8, what: 'decoding images' });
    // Another request holds the only decode slot.
    const busy = deferred();
    const other = gate.run(() => busy.promise);
    const failing = deferred();
    const abortsSeen: string[] = [];
    const fetcher: ImageFetcher = {
      async fetchBytes(url, param, signal) {
        if (url.endsWith('/huge.png')) return Buffer.from('huge');
        if (url.endsWith('/500')) {
          await failing.promise;
          throw new ApiError('image_fetch_failed', `${param} could not be fetched: the server answered HTTP 500`, { param });
        }
        // A slow server: only the abort ends this fetch.
        return new Promise((_resolve, reject) =>
          signal!.addEventListener('abort', () => {
            abortsSeen.push(param);
            reject(signal!.reason);
          }),
        );
      },
    } as ImageFetcher;
    const decoded: string[] = [];
    const pending = fetchReferences(
      ['http://a/huge.png', 'http://a/500', 'http://a/slow'],
      { fetcher, decodeLimits: LIMITS, gate, decode: async (_bytes, _limits, param) => (decoded.push(param), tiny) },
      new AbortController().signal,
    );
    pending.catch(() => undefined);
    // The huge reference is fetched and queued for the gate before the failure arrives.
    while (gate.stats().waiting === 0) await new Promise((r) => setImmediate(r));
    failing.resolve();
    await assert.rejects(pending, /image_urls\[1\] could not be fetched: the server answered HTTP 500/);
    assert.deepEqual(abortsSeen, ['image_urls[2]']);
    assert.equal(gate.stats().waiting, 0, 'the queued decode left the queue');
    busy.resolve();
    await other;
    assert.deepEqual(decoded, [], 'nothing was decoded for the failed request');
    assert.equal(gate.stats().droppedWaiting, 1);
  });

  it('decodes every reference, in order, when all arrive', async () => {
    const gate = createWorkGate({ concurrency: 2, maxQueue: 8, what: 'decoding images' });
    const fetcher = { fetchBytes: async (url: string) => Buffer.from(url) } as unknown as ImageFetcher;
    const images = await fetchReferences(['http://a/1', 'http://a/2', 'http://a/3'], {
      fetcher,
      decodeLimits: LIMITS,
      gate,
      decode: async (bytes) => ({ width: bytes.length, height: 1, data: new Uint8Array(bytes.length * 3) }),
    }, new AbortController().signal);
    assert.deepEqual(images.map((i) => i.width), [10, 10, 10]);
    assert.equal(gate.stats().started, 3);
  });

  it('the caller going away aborts the fetches', async () => {
    const gate = createWorkGate({ concurrency: 1, maxQueue: 8, what: 'decoding images' });
    const fetcher = {
      fetchBytes: (_url: string, _param: string, signal: AbortSignal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    } as unknown as ImageFetcher;
    const controller = new AbortController();
    const pending = fetchReferences(['http://a/1'], { fetcher, decodeLimits: LIMITS, gate }, controller.signal);
    controller.abort(new Error('client left'));
    await assert.rejects(pending, /client left/);
  });
});
