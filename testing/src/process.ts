/**
 * What every child process a test or benchmark starts needs: waiting for it to become ready,
 * stopping it with a grace period, and killing whatever is still running when the parent exits
 * (Jest workers exit without running `afterAll` when a test file crashes), so no relay or
 * redis-server outlives the run.
 */
import type { ChildProcess } from 'node:child_process';

/** How often {@link waitUntil} looks again, in ms. */
const POLL_INTERVAL_MS = 50;

/** How long one readiness request may take before it counts as "not ready", in ms. */
const HTTP_CHECK_TIMEOUT_MS = 2_000;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Kills `child` with SIGKILL if it is still running when this process exits. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** True while `child` has neither exited nor been killed by a signal. */
export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Resolves once `ok()` resolves true, looking again every 50 ms; rejects with `what` in the
 * message after `timeoutMs`, or at once when `gaveUp()` says there is no point waiting (the
 * process being waited for has exited).
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  ok: () => Promise<boolean>,
  gaveUp: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gaveUp()) throw new Error(`gave up waiting for ${what}: the process exited`);
    if (await ok()) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** True when a GET of `url` answers 2xx within 2 s; false on any error. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_CHECK_TIMEOUT_MS) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to `child` and waits for it to exit; if it has not exited `graceMs` later, it
 * is killed with SIGKILL. Does nothing for a process that has already exited.
 */
export async function stopChild(
  child: ChildProcess | undefined,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<void> {
  if (child === undefined || !isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
