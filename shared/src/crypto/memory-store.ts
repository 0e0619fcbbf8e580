/**
 * The in-memory reference implementation of the stores (libsignal's `storage/inmem.rs`): what the
 * tests, the CLI and the contact's page (which persists nothing) use. `commit` applies a
 * transaction all or nothing; `export`/`restore` give every record its own encoding, as a
 * persistent store would keep them (a coordinator's encrypted at rest), and model a restart.
 *
 * Activity order: the sessions map is kept in commit order (a committed record moves to the
 * end), so the least recently active peer is the first one; `evictionCandidate` takes the first
 * peer this device never wrote to, from a second map kept in the same order.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { toHex } from './encoding.js';
import { DeviceIdentity } from './identity.js';
import type { PublicIdentity } from './identity.js';
import type { KemPrekey, OneTimePrekeyPair, SignedPrekey } from './prekeys.js';
import {
  decodeKemPrekeyRecord,
  decodeOneTimePrekeyRecord,
  decodeRememberedHandshakes,
  decodeSignedPrekeyRecord,
  encodeKemPrekeyRecord,
  encodeOneTimePrekeyRecord,
  encodeRememberedHandshakes,
  encodeSignedPrekeyRecord,
  generateKemPrekey,
  generateOneTimePrekeys,
  generateSignedPrekey,
  nextSignedPrekeys,
  signedPrekeyNeedsRotation,
} from './prekeys.js';
import { SessionRecord } from './session-record.js';
import type { DeviceStore, Transaction } from './store.js';
import {
  MAX_PEER_DEVICES,
  MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY,
  MAX_SKIPPED_KEYS_PER_DEVICE,
  MAX_SKIPPED_KEYS_UNWRITTEN_PEERS,
} from './limits.js';

/** Every record of a device, each encoded on its own (`MemoryDeviceStore.export`). */
export interface StoredDevice {
  /** `DeviceIdentity.encodeSecret`. */
  readonly identity: Uint8Array;
  /** Current first, then the previous one if held (`encodeSignedPrekeyRecord`); none for a
   * store made without prekeys. */
  readonly signedPrekeys: readonly Uint8Array[];
  /** Current first, then the previous one if held (`encodeKemPrekeyRecord`). */
  readonly kemPrekeys: readonly Uint8Array[];
  readonly oneTimePrekeys: readonly Uint8Array[];
  readonly nextOneTimePrekeyId: number;
  /** One `encodeRememberedHandshakes` record per held signed prekey, in the same order. */
  readonly rememberedHandshakes: readonly Uint8Array[];
  /** Session records, least recently active first (`SessionRecord.encode`). */
  readonly sessions: readonly Uint8Array[];
}

interface SignedPair {
  readonly signed: SignedPrekey;
  readonly kem: KemPrekey;
}

export class MemoryDeviceStore implements DeviceStore {
  /** Null for a device that publishes no prekeys. */
  private current: SignedPair | null;
  private previous: SignedPair | null = null;
  private readonly oneTime = new Map<number, OneTimePrekeyPair>();
  private nextOneTimeId = 0;
  /** Remembered handshakes per signed prekey id: hex base key → base key, oldest first. */
  private readonly handshakes = new Map<number, Map<string, Uint8Array>>();
  private readonly sessions = new Map<string, SessionRecord>();
  /** The addresses of `sessions` whose record is not `written`, in the same order. */
  private readonly unwritten = new Map<string, true>();
  private skippedAll = 0;
  private skippedUnwritten = 0;

  private constructor(
    private readonly p: Primitives,
    readonly identity: DeviceIdentity,
    current: SignedPair | null,
  ) {
    this.current = current;
    if (current !== null) this.handshakes.set(current.signed.id, new Map());
  }

  /** A new store with fresh signed prekeys (ids 0) created at `nowSeconds`. */
  static create(p: Primitives, identity: DeviceIdentity, nowSeconds: number): MemoryDeviceStore {
    return new MemoryDeviceStore(p, identity, {
      signed: generateSignedPrekey(p, identity, 0, nowSeconds),
      kem: generateKemPrekey(p, identity, 0, nowSeconds),
    });
  }

  /**
   * A new store without prekeys, for a device that publishes none (a contact's page): it only
   * starts sessions, and refuses a handshake it did not start with `no_session`.
   */
  static createInitiatorOnly(p: Primitives, identity: DeviceIdentity): MemoryDeviceStore {
    return new MemoryDeviceStore(p, identity, null);
  }

  get publicIdentity(): PublicIdentity {
    return this.identity.publicIdentity;
  }

  // PrekeyStore

  get currentSignedPrekey(): SignedPrekey | undefined {
    return this.current?.signed;
  }

  get currentKemPrekey(): KemPrekey | undefined {
    return this.current?.kem;
  }

  findSignedPrekey(id: number): SignedPrekey | undefined {
    if (this.current?.signed.id === id) return this.current.signed;
    return this.previous?.signed.id === id ? this.previous.signed : undefined;
  }

  findKemPrekey(id: number): KemPrekey | undefined {
    if (this.current?.kem.id === id) return this.current.kem;
    return this.previous?.kem.id === id ? this.previous.kem : undefined;
  }

  findOneTimePrekey(id: number): OneTimePrekeyPair | undefined {
    return this.oneTime.get(id);
  }

  isHandshakeRemembered(signedPrekeyId: number, baseKey: Uint8Array): boolean {
    return this.handshakes.get(signedPrekeyId)?.has(toHex(baseKey)) === true;
  }

  rememberedHandshakeCount(signedPrekeyId: number): number {
    return this.handshakes.get(signedPrekeyId)?.size ?? 0;
  }

  get oneTimeCount(): number {
    return this.oneTime.size;
  }

  // SessionStore

  loadSession(address: string): SessionRecord | undefined {
    return this.sessions.get(address);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  skippedKeyCounts(): { readonly all: number; readonly unwritten: number } {
    return { all: this.skippedAll, unwritten: this.skippedUnwritten };
  }

  sessionAddresses(): Iterable<string> {
    return [...this.sessions.keys()];
  }

  evictionCandidates(count: number): string[] {
    const out: string[] = [];
    for (const address of this.unwritten.keys()) {
      if (out.length >= count) break;
      out.push(address);
    }
    return out;
  }

  // Local changes that no message causes (the application's own, before it publishes).

  /** Makes `count` new one-time prekeys and keeps their secrets (publish them afterwards). */
  addOneTimePrekeys(count: number): OneTimePrekeyPair[] {
    const fresh = generateOneTimePrekeys(this.p, this.nextOneTimeId, count);
    for (const k of fresh) this.oneTime.set(k.id, k);
    this.nextOneTimeId += count;
    return fresh;
  }

  /** Replaces both signed prekeys; the replaced ones stay usable until the next rotation. */
  rotate(nowSeconds: number): void {
    const c = this.requireCurrent();
    this.applyRotation(nextSignedPrekeys(this.p, this.identity, c.signed, c.kem, nowSeconds));
  }

  /** Rotates when the current signed prekey is older than `SIGNED_PREKEY_ROTATION_SECONDS`. */
  rotateIfDue(nowSeconds: number): boolean {
    if (!signedPrekeyNeedsRotation(this.requireCurrent().signed, nowSeconds)) return false;
    this.rotate(nowSeconds);
    return true;
  }

  // The transaction.

  commit(tx: Transaction): void {
    // Check everything first: nothing changes unless all of it can be applied.
    const bad = (): CryptoError => new CryptoError(CryptoErrorCode.INTERNAL);
    let count = this.sessions.size;
    for (const [address, record] of tx.sessions) {
      if (record !== null && record.address !== address) throw bad();
      const held = this.sessions.has(address);
      if (record === null && held) count--;
      if (record !== null && !held) count++;
    }
    if (count > MAX_PEER_DEVICES) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    if (new Set(tx.consumedOneTimePrekeys).size !== tx.consumedOneTimePrekeys.length) throw bad();
    for (const id of tx.consumedOneTimePrekeys) if (!this.oneTime.has(id)) throw bad();
    const added = new Map<number, Set<string>>();
    for (const h of tx.rememberedHandshakes) {
      if (this.findSignedPrekey(h.signedPrekeyId) === undefined) throw bad();
      const key = toHex(h.baseKey);
      const set = added.get(h.signedPrekeyId) ?? new Set<string>();
      if (set.has(key) || this.isHandshakeRemembered(h.signedPrekeyId, h.baseKey)) throw bad();
      set.add(key);
      added.set(h.signedPrekeyId, set);
      const total = this.rememberedHandshakeCount(h.signedPrekeyId) + set.size;
      if (total > MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY) {
        throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
      }
    }

    // Apply (nothing below can fail).
    for (const [address, record] of tx.sessions) {
      const old = this.sessions.get(address);
      if (old !== undefined) this.count(old, -1);
      this.sessions.delete(address);
      this.unwritten.delete(address);
      if (record === null) continue;
      this.putRecord(record);
    }
    for (const id of tx.consumedOneTimePrekeys) this.oneTime.delete(id);
    for (const h of tx.rememberedHandshakes) {
      this.handshakes.get(h.signedPrekeyId)!.set(toHex(h.baseKey), h.baseKey);
    }
    if (tx.rotatedPrekeys !== null) this.applyRotation(tx.rotatedPrekeys);
  }

  private putRecord(record: SessionRecord): void {
    this.sessions.set(record.address, record);
    if (!record.written) this.unwritten.set(record.address, true);
    this.count(record, 1);
  }

  private count(record: SessionRecord, sign: 1 | -1): void {
    const n = sign * record.skippedKeyCount;
    this.skippedAll += n;
    if (!record.written) this.skippedUnwritten += n;
  }

  private requireCurrent(): SignedPair {
    // A store made without prekeys has nothing to rotate (or publish): a bug in the caller.
    if (this.current === null) throw new CryptoError(CryptoErrorCode.INTERNAL);
    return this.current;
  }

  private applyRotation(next: SignedPair): void {
    if (this.previous !== null) this.handshakes.delete(this.previous.signed.id);
    this.previous = this.requireCurrent();
    this.current = next;
    this.handshakes.set(next.signed.id, new Map());
  }

  // Records.

  /** Every record, each in its own encoding (contains secrets: encrypt at rest). */
  export(): StoredDevice {
    const pairs = [this.current, this.previous].filter((k) => k !== null);
    return {
      identity: this.identity.encodeSecret(),
      signedPrekeys: pairs.map((k) => encodeSignedPrekeyRecord(k.signed)),
      kemPrekeys: pairs.map((k) => encodeKemPrekeyRecord(k.kem)),
      oneTimePrekeys: [...this.oneTime.values()].map(encodeOneTimePrekeyRecord),
      nextOneTimePrekeyId: this.nextOneTimeId,
      rememberedHandshakes: pairs.map((k) =>
        encodeRememberedHandshakes(k.signed.id, [
          ...(this.handshakes.get(k.signed.id)?.values() ?? []),
        ]),
      ),
      sessions: [...this.sessions.values()].map((r) => r.encode()),
    };
  }

  /**
   * A store from `export`'s records (a restart). Strict: every record decodes strictly, and
   * `bad_encoding` for a duplicate record, more than two signed prekeys, remembered handshakes
   * of a signed prekey not held, more session records than `MAX_PEER_DEVICES`, or more skipped
   * keys than the device bounds of limits.ts.
   */
  static restore(p: Primitives, stored: StoredDevice): MemoryDeviceStore {
    const bad = (): CryptoError => new CryptoError(CryptoErrorCode.BAD_ENCODING);
    const identity = DeviceIdentity.decodeSecret(p, stored.identity);
    const signed = stored.signedPrekeys.map((b) => decodeSignedPrekeyRecord(p, identity, b));
    const kem = stored.kemPrekeys.map((b) => decodeKemPrekeyRecord(p, identity, b));
    if (signed.length > 2 || kem.length !== signed.length) throw bad();
    if (signed.length === 2 && signed[0]!.id === signed[1]!.id) throw bad();
    const store = new MemoryDeviceStore(
      p,
      identity,
      signed.length === 0 ? null : { signed: signed[0]!, kem: kem[0]! },
    );
    if (signed.length === 2) {
      store.previous = { signed: signed[1]!, kem: kem[1]! };
      store.handshakes.set(signed[1]!.id, new Map());
    }
    for (const b of stored.oneTimePrekeys) {
      const k = decodeOneTimePrekeyRecord(p, b);
      if (store.oneTime.has(k.id)) throw bad();
      store.oneTime.set(k.id, k);
    }
    store.nextOneTimeId = stored.nextOneTimePrekeyId;
    const seen = new Set<number>();
    for (const b of stored.rememberedHandshakes) {
      const h = decodeRememberedHandshakes(b, MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY);
      const keys = store.handshakes.get(h.signedPrekeyId);
      if (keys === undefined || seen.has(h.signedPrekeyId)) throw bad();
      seen.add(h.signedPrekeyId);
      for (const k of h.baseKeys) keys.set(toHex(k), k);
    }
    if (stored.sessions.length > MAX_PEER_DEVICES) throw bad();
    for (const b of stored.sessions) {
      const record = SessionRecord.decode(p, b);
      if (store.sessions.has(record.address)) throw bad();
      store.putRecord(record);
    }
    if (store.skippedAll > MAX_SKIPPED_KEYS_PER_DEVICE) throw bad();
    if (store.skippedUnwritten > MAX_SKIPPED_KEYS_UNWRITTEN_PEERS) throw bad();
    return store;
  }
}
