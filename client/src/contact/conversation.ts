/**
 * The contact's live conversation, as the page runs it: a new codename (Russian words for a
 * Russian page), its keys stretched in the codename worker, and a `ContactConversation` of the
 * client core over the page's WebSocket, with first-contact proof-of-work in its own worker.
 * The page keeps nothing: every key and message lives in this object and goes with `close()`
 * (the quick exit calls it).
 */
import { signal } from '@preact/signals';
import {
  ContactConversation,
  largestAttachmentFile,
  webSocketTransport,
  type AttachmentMessage,
  type ContactStatus,
  type IntakeAnswer,
  type MessageState,
} from '@passage/shared/client/index';
import {
  ENGLISH_CODENAME_LIST,
  generateCodename,
  identityFromCodename,
  type CodenameKeys,
  type CodenameWordList,
} from '@passage/shared/crypto/codename';
import type { OrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { stripMetadata } from '@passage/shared/media/strip';
import { deriveInWorker } from '../codename/derive-in-worker.js';
import { solveInWorker } from '../pow/solve-in-worker.js';
import type { Language } from '../i18n/catalogue.js';
import { PROFILE_PATH } from './profile.js';
import { pageBlobTransport } from './xhr-blobs.js';

export interface ShownFile {
  readonly name: string;
  /** Bytes of the file (for one on its way, of the file as picked). */
  readonly size: number;
  /** Upload progress, 0 … 1, while it is on its way. */
  readonly progress?: number;
  /** The attachment message, once sent or received (what opening it needs). */
  readonly ref?: AttachmentMessage;
}

export interface ShownMessage {
  readonly id: string;
  readonly mine: boolean;
  readonly body: string;
  readonly ts: number;
  readonly state?: MessageState;
  readonly file?: ShownFile;
}

/**
 * A file the person picked, checked before anything is sent: cleaned of its hidden data
 * (`stripMetadata`: JPEG, PNG, WebP), of a type that cannot be cleaned (sent only if the person
 * says so), or one that cannot be sent at all.
 */
export type PreparedFile =
  | {
      readonly kind: 'cleaned' | 'unchecked';
      readonly name: string;
      readonly type: string;
      readonly bytes: Uint8Array;
    }
  | { readonly kind: 'too_large'; readonly name: string; readonly limit: number }
  | { readonly kind: 'empty'; readonly name: string };

export type LinkState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

function endpoint(
  p: Primitives,
  profile: OrgProfile,
  keys: CodenameKeys,
  mode: 'new' | 'restore',
): ContactConversation {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return new ContactConversation({
    p,
    organizationKey: profile.organizationKey,
    lastAcceptedProfile: profile,
    identity: identityFromCodename(p, keys),
    // The conversation is kept on the relay, encrypted under the codename (ADR 0017): saved
    // before each message leaves and before each one read is acknowledged.
    state: { mailboxKey: keys.mailboxKey, mode },
    blobs: pageBlobTransport(),
    fetchProfile: async () => {
      const res = await fetch(PROFILE_PATH, { cache: 'no-store', credentials: 'omit' });
      if (!res.ok) throw new Error(`profile: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    relay: {
      url: () => `${scheme}//${location.host}/v1/ws`,
      transport: webSocketTransport(),
      solvePow: (challenge, onProgress) => solveInWorker(challenge, onProgress),
    },
  });
}

export class LiveConversation {
  readonly messages = signal<readonly ShownMessage[]>([]);
  readonly link = signal<LinkState>('connecting');
  /** The case status the coordinators last shared (a status notice), if any. */
  readonly status = signal<ContactStatus | null>(null);
  readonly #contact: ContactConversation;
  /** Numbers the messages shown before the client core gave them their ids. */
  #local = 0;

  private constructor(contact: ContactConversation) {
    this.#contact = contact;
    contact.on('state', (s) => {
      this.link.value =
        s.state === 'ready' ? 'ready' : s.state === 'closed' ? 'closed' : 'reconnecting';
    });
    contact.on('message', (m) => {
      if (m.message.type === 'status_notice') {
        this.status.value = m.message.status;
        return;
      }
      if (m.message.type === 'attachment') {
        this.#add(fileEntry(m.message, false));
      } else if (m.message.type === 'text') {
        this.#add({ id: m.message.id, mine: false, body: m.message.body, ts: m.message.ts });
      } else {
        return;
      }
      void contact.markRead([m.message.id]).catch(() => undefined);
    });
    contact.on('message-state', (c) => {
      this.messages.value = this.messages.value.map((x) =>
        x.id === c.id ? { ...x, state: c.state } : x,
      );
    });
  }

  /**
   * Starts a new conversation: a codename, its keys, the profile checked against the key the
   * page showed, the intake and the first message sent. Resolves with the codename to show.
   */
  static async start(options: {
    readonly p: Primitives;
    readonly profile: OrgProfile;
    readonly language: Language;
    readonly answers: readonly IntakeAnswer[];
    readonly text: string;
  }): Promise<{ conversation: LiveConversation; codename: string; list: CodenameWordList }> {
    const { p, profile } = options;
    const list =
      options.language === 'ru'
        ? (await import('@passage/shared/crypto/codename-ru')).RUSSIAN_CODENAME_LIST
        : ENGLISH_CODENAME_LIST;
    const codename = generateCodename(p, { list });
    const { keys } = await deriveInWorker(codename);
    const contact = endpoint(p, profile, keys, 'new');
    const conversation = new LiveConversation(contact);
    let sent;
    try {
      await contact.start();
      if (options.answers.length > 0) await contact.sendIntake(options.answers);
      sent = await contact.sendText(options.text);
    } catch (error) {
      contact.close();
      throw error;
    }
    conversation.#add({
      id: sent.id,
      mine: true,
      body: options.text,
      ts: Date.now(),
      state: contact.delivery(sent.id)?.state ?? 'queued',
    });
    return { conversation, codename, list };
  }

  /**
   * A returning contact: the codename as typed, stretched in the worker (the same path and cost
   * as a new one), then the saved conversation read back from the relay.
   *
   * @throws CodenameWorkerError('invalid_codename') for words that are not a codename;
   *   ContactStateError('state_not_found') for a codename with nothing saved (a mistyped one
   *   looks the same).
   */
  static async resume(options: {
    readonly p: Primitives;
    readonly profile: OrgProfile;
    readonly typed: string;
  }): Promise<LiveConversation> {
    const { keys } = await deriveInWorker(options.typed);
    const contact = endpoint(options.p, options.profile, keys, 'restore');
    const conversation = new LiveConversation(contact);
    try {
      await contact.start();
    } catch (error) {
      contact.close();
      throw error;
    }
    for (const e of contact.savedState?.conversation.transcript ?? []) {
      if (e.message.type === 'status_notice') conversation.status.value = e.message.status;
      if (e.message.type === 'attachment') {
        const mine = e.from === 'contact';
        conversation.#add({
          ...fileEntry(e.message, mine),
          ...(mine ? { state: e.receipt === 'none' ? ('sent' as const) : e.receipt } : {}),
        });
        continue;
      }
      if (e.message.type !== 'text') continue;
      conversation.#add({
        id: e.message.id,
        mine: e.from === 'contact',
        body: e.message.body,
        ts: e.message.ts,
        // What the team's receipts had said, as saved.
        ...(e.from === 'contact'
          ? { state: e.receipt === 'none' ? ('sent' as const) : e.receipt }
          : {}),
      });
    }
    return conversation;
  }

  /**
   * Sends a text. It is shown at once, waiting to be sent: while the relay is away the send
   * waits for it (the conversation is saved on the relay before the message leaves), and words
   * that vanished from the box and the list would be typed again. A send that fails for good is
   * shown as not sent.
   */
  async send(text: string): Promise<void> {
    const local = `local:${++this.#local}`;
    this.#add({ id: local, mine: true, body: text, ts: Date.now(), state: 'queued' });
    let shown: Partial<ShownMessage>;
    try {
      const sent = await this.#contact.sendText(text);
      // The states it reached before it was followed here (events for an id not yet shown).
      shown = { id: sent.id, state: this.#contact.delivery(sent.id)?.state ?? 'queued' };
    } catch {
      shown = { state: 'failed' };
    }
    this.messages.value = this.messages.value.map((x) => (x.id === local ? { ...x, ...shown } : x));
  }

  /** The largest file the organization accepts, in bytes (its profile's bound, or the relay's). */
  get maxFileBytes(): number {
    return largestAttachmentFile(this.#contact.maxAttachmentBytes);
  }

  /** Reads and checks a picked file (nothing is sent). */
  async prepareFile(file: File): Promise<PreparedFile> {
    const name = file.name === '' ? 'file' : file.name;
    if (file.size === 0) return { kind: 'empty', name };
    const limit = this.maxFileBytes;
    if (file.size > limit) return { kind: 'too_large', name, limit };
    const bytes = new Uint8Array(await file.arrayBuffer());
    const cleaned = stripMetadata(bytes, file.type);
    if (cleaned.ok) {
      if (cleaned.bytes.length > limit) return { kind: 'too_large', name, limit };
      return { kind: 'cleaned', name, type: cleaned.type, bytes: cleaned.bytes };
    }
    return { kind: 'unchecked', name, type: file.type, bytes };
  }

  /**
   * Sends a prepared file: shown at once with its upload progress, then with the states of any
   * message. Resolves when it is sent or has failed (shown as not sent).
   */
  async sendFile(file: Extract<PreparedFile, { bytes: Uint8Array }>): Promise<void> {
    const local = `local:${++this.#local}`;
    this.#add({
      id: local,
      mine: true,
      body: '',
      ts: Date.now(),
      state: 'queued',
      file: { name: file.name, size: file.bytes.length, progress: 0 },
    });
    const update = (change: (m: ShownMessage) => ShownMessage) => {
      this.messages.value = this.messages.value.map((m) => (m.id === local ? change(m) : m));
    };
    try {
      const sent = await this.#contact.sendAttachment(
        { bytes: file.bytes, name: file.name, type: file.type },
        (p) => {
          const progress = p.total === undefined || p.total === 0 ? 0 : p.bytes / p.total;
          update((m) => ({ ...m, file: { ...m.file!, progress } }));
        },
      );
      const message = sent.message as AttachmentMessage;
      update((m) => ({
        ...m,
        id: sent.id,
        state: this.#contact.delivery(sent.id)?.state ?? 'queued',
        file: { name: file.name, size: file.bytes.length, ref: message },
      }));
    } catch {
      update((m) => ({
        ...m,
        state: 'failed',
        file: { name: file.name, size: file.bytes.length },
      }));
    }
  }

  /** Downloads and opens a file of the conversation: its bytes, checked and decrypted. */
  openFile(ref: AttachmentMessage): Promise<Uint8Array> {
    return this.#contact.fetchAttachment(ref);
  }

  /**
   * "Delete my conversation": the relay deletes the saved conversation and what is still queued
   * for this mailbox, then the conversation closes. Throws the relay's error (nothing deleted for
   * sure: the person may try again).
   */
  async delete(): Promise<void> {
    await this.#contact.deleteConversation();
    this.messages.value = [];
  }

  close(): void {
    this.#contact.close();
    this.messages.value = [];
  }

  #add(m: ShownMessage): void {
    if (this.messages.value.some((x) => x.id === m.id)) return;
    this.messages.value = [...this.messages.value, m];
  }
}

/** A file's entry in the conversation, from its attachment message. */
function fileEntry(message: AttachmentMessage, mine: boolean): ShownMessage {
  return {
    id: message.id,
    mine,
    body: '',
    ts: message.ts,
    file: { name: message.fileName, size: message.size, ref: message },
  };
}
