/**
 * The TestClients a test file opens, kept so that one `afterEach` closes them all and no socket
 * outlives its test:
 *
 * ```ts
 * const clients = new ClientPool();
 * afterEach(() => clients.closeAll());
 * const alice = await clients.online(relay);   // connected and authenticated
 * ```
 */
import { TestClient, identity, type ConnectOptions, type TestIdentity } from './test-client.js';

/** What a client connects to: an in-process relay or a relay process. */
export interface HasWsUrl {
  readonly wsUrl: string;
}

export class ClientPool {
  readonly #open: TestClient[] = [];

  /** Opens a connection to `relay` and keeps it until {@link closeAll}. */
  async connect(relay: HasWsUrl, options?: ConnectOptions): Promise<TestClient> {
    return this.add(await TestClient.connect(relay.wsUrl, options));
  }

  /** Opens a connection and authenticates it as `who` (a fresh identity when omitted). */
  async online(relay: HasWsUrl, who: TestIdentity = identity()): Promise<TestClient> {
    const client = await this.connect(relay);
    await client.authenticate(who);
    return client;
  }

  /** Keeps a client opened some other way, so {@link closeAll} closes it too; returns it. */
  add(client: TestClient): TestClient {
    this.#open.push(client);
    return client;
  }

  /** Closes every kept client (normal closure) and forgets them. */
  async closeAll(): Promise<void> {
    await Promise.all(this.#open.splice(0).map((c) => c.close()));
  }
}
