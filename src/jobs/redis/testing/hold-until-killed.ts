/**
 * A stand-in worker process for the kill -9 test (redis-kill.test.ts): connects with short locks and
 * leases, claims the oldest job of a model, takes a backend slot and watches the job, prints one JSON
 * line with what it holds, then waits to be killed. Arguments: redis URL, key prefix, model.
 */
import { connectRedis } from '../connect-redis.ts';

const [url, prefix, model] = process.argv.slice(2);
if (!url || !prefix || !model) throw new Error('usage: hold-until-killed.ts REDIS_URL PREFIX MODEL');
const parts = await connectRedis({ url, prefix, lockMs: 1000, stalledIntervalMs: 500, leaseTtlMs: 900 });
const jobId = await parts.queue.claim(model);
const lease = await parts.slots.tryAcquire('gpu', 1);
if (jobId) parts.events.subscribe(jobId, () => {});
process.stdout.write(`${JSON.stringify({ jobId, slot: lease !== null })}\n`);
setInterval(() => {}, 60_000);
