/**
 * Keeps a coordinator device reachable: publishes its prekey bundle on the first connection
 * after a start, tops up one-time prekeys when the relay's count (`prekeys.status`) falls below
 * a threshold, and rotates the signed prekeys when they are due
 * (`SIGNED_PREKEY_ROTATION_SECONDS`) or when a handshake filled their memory (the cipher's
 * early rotation), publishing the new bundle each time.
 *
 * One run at a time: a run asked for while one is going is done once after it. A run that
 * fails (the connection went, a rate limit) is tried again at the next connection or the next
 * periodic check; one-time prekeys made for a publish that did not go through are published
 * with the next one, so none is made twice.
 *
 * The store's own changes (new one-time prekeys, a scheduled rotation) are not transitions of
 * a message, so they are local calls on the store (`PublishingStore`), as memory-store.ts
 * provides them.
 */
import { publicationOf, toWirePublication } from '../crypto/bundle.js';
import type { OneTimePrekeyPair } from '../crypto/prekeys.js';
import type { DeviceStore } from '../crypto/store.js';
import {
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_ONE_TIME_PREKEYS_STORED,
  PROTOCOL_VERSION,
} from '../protocol/limits.js';
import { Emitter } from './events.js';
import type { Requester } from './sessions.js';
import type { Clock, TimerHandle } from './transport.js';

/** A device store that also makes one-time prekeys and rotates its signed ones (memory-store.ts). */
export interface PublishingStore extends DeviceStore {
  /** Makes `count` new one-time prekeys, keeps their secrets and returns them to publish. */
  addOneTimePrekeys(count: number): OneTimePrekeyPair[];
  /** Rotates the signed prekeys when they are older than the rotation period. */
  rotateIfDue(nowSeconds: number): boolean;
}

export interface PrekeyPolicy {
  /** Top up when the relay holds fewer one-time prekeys than this. */
  readonly minOneTime: number;
  /** How many the relay should hold after a top-up (≤ `MAX_ONE_TIME_PREKEYS_STORED`). */
  readonly targetOneTime: number;
  /** How often to ask the relay for the count and check the rotation, while connected. */
  readonly checkIntervalMs: number;
}

export const DEFAULT_PREKEY_POLICY: PrekeyPolicy = {
  minOneTime: 10,
  targetOneTime: 50,
  checkIntervalMs: 60 * 60 * 1000,
};

/** Runs one check may chain (a relay that keeps answering "low" cannot make it loop). */
export const MAX_RUNS_PER_CHECK = 4;

export interface PrekeyPublisherEvents extends Record<string, unknown> {
  /** A bundle was published: the relay now holds `remaining` one-time prekeys. */
  published: { readonly remaining: number; readonly oneTime: number; readonly rotated: boolean };
  /** A run failed (it is tried again later); `code` is the error's code, if it has one. */
  failed: { readonly code: string };
}

export interface PrekeyPublisherOptions {
  readonly store: PublishingStore;
  readonly request: Requester;
  readonly clock: Clock;
  readonly policy?: Partial<PrekeyPolicy>;
}

export class PrekeyPublisher {
  readonly events = new Emitter<PrekeyPublisherEvents>();
  readonly #store: PublishingStore;
  readonly #request: Requester;
  readonly #clock: Clock;
  readonly #policy: PrekeyPolicy;
  /** Made, not yet published (a publish that failed). */
  #unpublished: OneTimePrekeyPair[] = [];
  #publishedOnce = false;
  #rotationPending = false;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(options: PrekeyPublisherOptions) {
    this.#store = options.store;
    this.#request = options.request;
    this.#clock = options.clock;
    const policy = { ...DEFAULT_PREKEY_POLICY, ...options.policy };
    if (
      !(policy.minOneTime >= 0 && policy.minOneTime <= policy.targetOneTime) ||
      policy.targetOneTime > MAX_ONE_TIME_PREKEYS_STORED
    ) {
      throw new RangeError('prekey policy: 0 ≤ minOneTime ≤ targetOneTime ≤ 100');
    }
    this.#policy = policy;
  }

  /** True once a bundle has been published since this publisher started. */
  get published(): boolean {
    return this.#publishedOnce;
  }

  /** The connection is ready: check now, and then every `checkIntervalMs`. */
  onReady(): Promise<void> {
    this.#schedule();
    return this.check();
  }

  /** A handshake used up a one-time prekey: check the count. */
  onConsumed(): Promise<void> {
    return this.check();
  }

  /** A handshake rotated the signed prekeys: publish the new bundle. */
  onRotated(): Promise<void> {
    this.#rotationPending = true;
    return this.check();
  }

  /** Runs a check (once more after the current one if one is going); never rejects. */
  check(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.check();
      this.#schedule();
    }, this.#policy.checkIntervalMs);
  }

  async #loop(): Promise<void> {
    let runs = 0;
    do {
      this.#again = false;
      runs++;
      try {
        await this.#run();
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        this.events.emit('failed', { code: typeof code === 'string' ? code : 'error' });
        return;
      }
    } while (this.#again && !this.#stopped && runs < MAX_RUNS_PER_CHECK);
  }

  async #run(): Promise<void> {
    const nowSeconds = Math.floor(this.#clock.now() / 1000);
    if (this.#store.rotateIfDue(nowSeconds)) this.#rotationPending = true;
    const status = await this.#request(
      { v: PROTOCOL_VERSION, t: 'prekeys.status' },
      'prekeys.count',
    );
    const remaining = status.remaining + this.#unpublished.length;
    const low = remaining < this.#policy.minOneTime;
    if (this.#publishedOnce && !low && !this.#rotationPending) return;
    // Top up to the target (at least to what one publish carries when low), never past what the
    // relay keeps or one frame holds.
    const room = Math.min(
      MAX_ONE_TIME_PREKEYS_PER_PUBLISH - this.#unpublished.length,
      MAX_ONE_TIME_PREKEYS_STORED - remaining,
    );
    const wanted = low || !this.#publishedOnce ? this.#policy.targetOneTime - remaining : 0;
    const fresh = Math.max(0, Math.min(room, wanted));
    if (fresh > 0) this.#unpublished.push(...this.#store.addOneTimePrekeys(fresh));
    const batch = this.#unpublished.slice(0, MAX_ONE_TIME_PREKEYS_PER_PUBLISH);
    const rotated = this.#rotationPending;
    const answer = await this.#request(
      {
        v: PROTOCOL_VERSION,
        t: 'prekeys.publish',
        ...toWirePublication(
          publicationOf(
            {
              publicIdentity: this.#store.identity.publicIdentity,
              currentSignedPrekey: this.#store.currentSignedPrekey,
              currentKemPrekey: this.#store.currentKemPrekey,
            },
            batch,
          ),
        ),
      },
      'prekeys.count',
    );
    this.#unpublished = this.#unpublished.slice(batch.length);
    this.#publishedOnce = true;
    this.#rotationPending = false;
    this.events.emit('published', {
      remaining: answer.remaining,
      oneTime: batch.length,
      rotated,
    });
    // Still low (a burst of fetches meanwhile, or more than one frame's worth missing): again.
    if (answer.remaining < this.#policy.minOneTime) this.#again = true;
  }
}
