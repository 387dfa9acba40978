/**
 * CircuitShare over Redis pub/sub: one channel `<prefix>:circuits` carries every router's breaker changes as JSON,
 * tagged with the sending process's id so that it ignores its own. Pub/sub keeps nothing: a process that starts
 * after a circuit opened learns of it from the next change, or trips its own breaker as before.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CircuitNews, CircuitShare } from './circuit-share.ts';

export interface RedisCircuitShareOptions {
  /** A non-blocking connection for PUBLISH (may be shared); the caller owns it. */
  commands: Redis;
  /** A connection in subscriber mode (may be shared with other subscribers); the caller owns it. */
  subscriber: Redis;
  prefix: string;
  logger?: { warn(obj: object, msg?: string): void };
}

export type RedisCircuitShare = CircuitShare & {
  /** Subscribes the channel; resolves once Redis confirmed it. */
  ready(): Promise<void>;
  close(): Promise<void>;
};

const isNews = (v: unknown): v is CircuitNews & { from: string } => {
  const n = v as Partial<CircuitNews & { from: string }> | null;
  return (
    typeof n === 'object' && n !== null && typeof n.from === 'string' && typeof n.model === 'string' && typeof n.backendId === 'string' &&
    (n.state === 'open' || n.state === 'closed') && typeof n.atMs === 'number' && Number.isFinite(n.atMs)
  );
};

export function createRedisCircuitShare(options: RedisCircuitShareOptions): RedisCircuitShare {
  const channel = `${options.prefix}:circuits`;
  const self = randomUUID();
  const listeners = new Set<(news: CircuitNews) => void>();
  const onMessage = (from: string, message: string) => {
    if (from !== channel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (!isNews(parsed) || parsed.from === self) return;
    const { model, backendId, state, atMs } = parsed;
    for (const listener of listeners) listener({ model, backendId, state, atMs });
  };
  options.subscriber.on('message', onMessage);
  let closed = false;
  return {
    async ready() {
      await options.subscriber.subscribe(channel);
    },
    publish(news) {
      if (closed) return;
      options.commands.publish(channel, JSON.stringify({ ...news, from: self })).catch((err: unknown) =>
        options.logger?.warn({ err: (err as Error)?.message, backend: news.backendId }, 'could not tell the other processes of a circuit change'),
      );
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      options.subscriber.off('message', onMessage);
      await options.subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
