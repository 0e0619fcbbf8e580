/**
 * Bounded waits for tests that watch a relay from the inside, so that a test whose condition
 * never comes ends with a clear error rather than at Jest's timeout.
 */

/** How long {@link until} waits by default, in ms: generous, for a loaded 2-core machine. */
export const UNTIL_TIMEOUT_MS = 30_000;

/** How often {@link until} looks again, in ms. */
const UNTIL_POLL_MS = 10;

/** Rejects when `promise` has not settled within `ms` (so a failing test ends cleanly). */
export async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `condition` holds, looking again every 10 ms, for at most `timeoutMs`. */
export async function until(
  condition: () => boolean,
  timeoutMs: number = UNTIL_TIMEOUT_MS,
): Promise<void> {
  for (let waited = 0; !condition(); waited += UNTIL_POLL_MS) {
    if (waited > timeoutMs) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, UNTIL_POLL_MS));
  }
}
