/**
 * The one way tests wait for something that changes on its own (an abort reaching a backend, a sweeper
 * running): look again every few milliseconds until it holds. There is no wall-clock deadline here: a busy
 * machine only makes it take longer, and a condition that never holds fails through the runner's per-test
 * timeout (scripts/test.sh sets --test-timeout, 20 minutes). Prefer an event to wait on where the code offers one.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, intervalMs = 10): Promise<void> {
  const started = process.hrtime.bigint();
  let looks = 0;
  while (!(await check())) {
    looks += 1;
    // A long wait says what it is waiting for, so a timed-out test's log names the condition.
    if (looks % 3000 === 0) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      process.stderr.write(`waitUntil: still waiting after ${seconds.toFixed(0)} s for ${what}\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
