/**
 * JobEvents across processes over Redis pub/sub.
 *
 * Channels: one per job (`<prefix>:ev:job:<jobId>`), subscribed only while this process has a listener for
 * that job. Redis then sends a worker's progress only to the API processes whose SSE clients watch the
 * job, instead of every event to every process behind one channel with a jobId filter. Order per job holds:
 * Redis delivers a channel's messages to each subscriber in the order one connection published them, and
 * each process publishes on one connection. Listeners in the publishing process are called at once, as with
 * the in-memory events; the copy that comes back from Redis is recognised by its origin and dropped.
 *
 * Watchers: `hasSubscribers`/`watchedJobIds` are synchronous, so each process keeps a local view of who
 * watches what, anywhere. Each watch is a member `<instance> <jobId>` of the sorted set `<prefix>:ev:watched`
 * scored by its expiry (Redis's own clock, so hosts' clocks need not agree); its owner refreshes it every
 * watchTtlMs / 3, announces adds and removals on `<prefix>:ev:watch`, and every refresh also re-reads the
 * live members (dropping expired ones) to rebuild the view. A process that dies stops refreshing, and its
 * watches leave every view within watchTtlMs plus one refresh.
 *
 * partial_image events carry raw pixels: the buffer travels as base64 inside the JSON message.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RawImage } from '../../domain/types.ts';
import type { JobEvent, JobEvents } from '../ports.ts';

export interface RedisJobEventsLogger {
  warn(obj: object, msg?: string): void;
}

export interface RedisJobEventsOptions {
  /** Publishes and runs the watch scripts; may be shared with other non-blocking users. */
  commands: Redis;
  /** Dedicated to SUBSCRIBE (a subscribed connection can run nothing else). */
  subscriber: Redis;
  prefix: string;
  /** How long a watch outlives its last refresh, ms. */
  watchTtlMs?: number;
  logger?: RedisJobEventsLogger;
}

export type RedisJobEvents = JobEvents & {
  /** Resolves once the watch channel is subscribed and the first view read. */
  ready(): Promise<void>;
  /** Stops refreshing and listening; watches not unsubscribed expire by their TTL. The connections are the caller's. */
  close(): Promise<void>;
};

const DEFAULT_WATCH_TTL_MS = 30_000;

/** ZADD the given members with expiry = Redis time + ttl, drop expired ones, return the live ones. */
const REFRESH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

interface WireImage {
  width: number;
  height: number;
  data: string;
}

type WireEvent = Exclude<JobEvent, { type: 'partial_image' }> | (Omit<Extract<JobEvent, { type: 'partial_image' }>, 'image'> & { image: WireImage });

function encode(origin: string, event: JobEvent): string {
  const wire: WireEvent =
    event.type === 'partial_image'
      ? { ...event, image: { width: event.image.width, height: event.image.height, data: Buffer.from(event.image.data.buffer, event.image.data.byteOffset, event.image.data.byteLength).toString('base64') } }
      : event;
  return JSON.stringify({ o: origin, e: wire });
}

function decode(message: string): { origin: string; event: JobEvent } {
  const { o, e } = JSON.parse(message) as { o: string; e: WireEvent };
  if (e.type !== 'partial_image') return { origin: o, event: e };
  const bytes = Buffer.from(e.image.data, 'base64');
  const image: RawImage = { width: e.image.width, height: e.image.height, data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  return { origin: o, event: { ...e, image } };
}

export function createRedisJobEvents(options: RedisJobEventsOptions): RedisJobEvents {
  const { commands, subscriber, prefix } = options;
  const ttlMs = options.watchTtlMs ?? DEFAULT_WATCH_TTL_MS;
  const logger = options.logger ?? { warn() {} };
  const instance = randomUUID();
  const watchedKey = `${prefix}:ev:watched`;
  const watchChannel = `${prefix}:ev:watch`;
  const jobChannelPrefix = `${prefix}:ev:job:`;
  const listeners = new Map<string, Set<(event: JobEvent) => void>>();
  /** jobId → this process's listeners that count as watchers (announced and refreshed in Redis). */
  const watching = new Map<string, number>();
  /** jobId → instances (other than this one) watching it. */
  let remote = new Map<string, Set<string>>();
  /** Watch announcements heard while a refresh is in flight, replayed over its snapshot (the two come on different connections). */
  let journal: Array<{ add: boolean; owner: string; jobId: string }> | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const member = (jobId: string) => `${instance} ${jobId}`;

  function applyWatch(view: Map<string, Set<string>>, add: boolean, owner: string, jobId: string): void {
    if (owner === instance) return;
    let owners = view.get(jobId);
    if (add) {
      if (!owners) view.set(jobId, (owners = new Set()));
      owners.add(owner);
    } else if (owners) {
      owners.delete(owner);
      if (owners.size === 0) view.delete(jobId);
    }
  }

  function deliver(event: JobEvent): void {
    const set = listeners.get(event.jobId);
    if (!set) return;
    for (const listener of [...set]) listener(event);
  }

  function onMessage(channel: string, message: string): void {
    try {
      if (channel === watchChannel) {
        const [op, owner, jobId] = message.split(' ');
        if (!owner || !jobId) return;
        journal?.push({ add: op === '+', owner, jobId });
        applyWatch(remote, op === '+', owner, jobId);
        return;
      }
      if (!channel.startsWith(jobChannelPrefix)) return;
      const { origin, event } = decode(message);
      if (origin !== instance) deliver(event);
    } catch (err) {
      logger.warn({ err, channel }, 'could not read a job event from Redis');
    }
  }

  async function refresh(): Promise<void> {
    journal = [];
    try {
      const live = (await commands.eval(REFRESH_SCRIPT, 1, watchedKey, String(ttlMs), ...[...watching.keys()].map(member))) as string[];
      const view = new Map<string, Set<string>>();
      for (const entry of live) {
        const space = entry.indexOf(' ');
        if (space > 0) applyWatch(view, true, entry.slice(0, space), entry.slice(space + 1));
      }
      for (const heard of journal) applyWatch(view, heard.add, heard.owner, heard.jobId);
      remote = view;
    } finally {
      journal = null;
    }
  }

  function scheduleRefresh(): void {
    if (closed) return;
    timer = setTimeout(() => {
      refresh()
        .catch((err: unknown) => logger.warn({ err }, 'could not refresh the job watches in Redis'))
        .finally(scheduleRefresh);
    }, Math.max(10, Math.floor(ttlMs / 3)));
    timer.unref();
  }

  subscriber.on('message', onMessage);
  const started = (async () => {
    await subscriber.subscribe(watchChannel);
    await refresh();
    scheduleRefresh();
  })();
  // A failed start is reported by ready(); events published meanwhile only reach local listeners.
  started.catch(() => {});

  function announce(jobId: string, add: boolean): void {
    const write = add
      ? commands.eval(REFRESH_SCRIPT, 1, watchedKey, String(ttlMs), member(jobId)).then(() => commands.publish(watchChannel, `+ ${instance} ${jobId}`))
      : commands.zrem(watchedKey, member(jobId)).then(() => commands.publish(watchChannel, `- ${instance} ${jobId}`));
    write.catch((err: unknown) => logger.warn({ err, jobId }, 'could not announce a job watch in Redis'));
  }

  return {
    publish(event) {
      deliver(event);
      if (closed) return;
      commands.publish(`${jobChannelPrefix}${event.jobId}`, encode(instance, event)).catch((err: unknown) =>
        logger.warn({ err, jobId: event.jobId, type: event.type }, 'could not publish a job event to Redis'),
      );
    },

    subscribe(jobId, listener, subscribeOptions) {
      const watch = subscribeOptions?.watch ?? true;
      let set = listeners.get(jobId);
      if (!set) {
        listeners.set(jobId, (set = new Set()));
        if (!closed) subscriber.subscribe(`${jobChannelPrefix}${jobId}`).catch((err: unknown) => logger.warn({ err, jobId }, 'could not subscribe to a job in Redis'));
      }
      // A wrapper per subscription: the same function subscribed twice is two subscriptions.
      const entry = (event: JobEvent) => listener(event);
      set.add(entry);
      if (watch) {
        const count = (watching.get(jobId) ?? 0) + 1;
        watching.set(jobId, count);
        if (count === 1 && !closed) announce(jobId, true);
      }
      let done = false;
      return () => {
        if (done) return;
        done = true;
        set.delete(entry);
        if (watch) {
          const left = (watching.get(jobId) ?? 1) - 1;
          if (left > 0) watching.set(jobId, left);
          else {
            watching.delete(jobId);
            if (!closed) announce(jobId, false);
          }
        }
        if (set.size > 0 || listeners.get(jobId) !== set) return;
        listeners.delete(jobId);
        if (closed) return;
        subscriber.unsubscribe(`${jobChannelPrefix}${jobId}`).catch((err: unknown) => logger.warn({ err, jobId }, 'could not unsubscribe from a job in Redis'));
      };
    },

    hasSubscribers(jobId) {
      return watching.has(jobId) || remote.has(jobId);
    },

    watchedJobIds() {
      return [...new Set([...watching.keys(), ...remote.keys()])];
    },

    ready: () => started,

    async close() {
      closed = true;
      clearTimeout(timer);
      subscriber.off('message', onMessage);
    },
  };
}
