/**
 * Real redis-server processes for tests: one node on a free loopback port (which a test may stop
 * and start again on the same port), or a three-node Redis Cluster. No persistence, nothing on
 * 6379, and every process is killed when the test process exits, whatever happened.
 *
 * Used by the store's unit tests in server/, the integration tests in test/ and the relay
 * benchmark (which reads the server's CPU time through `pid()`).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { freePort } from './ports.js';
import { killOnExit, stopChild, waitUntil } from './process.js';

const execFileAsync = promisify(execFile);

/** How long a redis-server may take to answer PING after it was spawned, in ms. */
const START_TIMEOUT_MS = 20_000;
/** How long a cluster may take to report cluster_state:ok on every node, in ms. */
const CLUSTER_OK_TIMEOUT_MS = 30_000;
/** Grace after SIGTERM before SIGKILL, in ms. */
const STOP_GRACE_MS = 5_000;

/** Sends one inline command and resolves with the first chunk of the reply ('' on error). */
function rawCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let data = '';
    const done = (value: string) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(1_000, () => done(''));
    socket.once('error', () => done(''));
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      if (data.endsWith('\r\n')) done(data);
    });
  });
}

/**
 * Spawns redis-server on `port` without persistence, slow log or latency monitor. Its output is dropped, or appended to
 * `logFile` when one is given (the benchmark keeps it for a failed run).
 */
function spawnRedis(
  port: number,
  extra: readonly string[],
  cwd?: string,
  logFile?: string,
): ChildProcess {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    // Keep no record of commands beside the keys, which expire: a slow log holds mailbox ids,
    // message ids and client addresses long after every key is gone (as compose and the README).
    '--slowlog-max-len',
    '0',
    '--latency-monitor-threshold',
    '0',
    ...extra,
  ];
  const log = logFile === undefined ? undefined : openSync(logFile, 'a');
  try {
    const child = spawn('redis-server', args, {
      stdio: log === undefined ? 'ignore' : ['ignore', log, log],
      ...(cwd ? { cwd } : {}),
    });
    killOnExit(child);
    return child;
  } finally {
    // The child holds its own copy of the descriptor.
    if (log !== undefined) closeSync(log);
  }
}

/** One redis-server that a test controls. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Stops the server (SIGTERM, then SIGKILL after a grace; or SIGKILL at once). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and waits until it answers PING. */
  start(): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process: its sockets stay open but silent. */
  freeze(): void;
  thaw(): void;
  /** The process id of the running server (to read its CPU time); undefined while stopped. */
  pid(): number | undefined;
}

/** True once the server answers at all (PONG, or NOAUTH when it has a password). */
async function answers(port: number): Promise<boolean> {
  const reply = await rawCommand(port, 'PING');
  return reply.startsWith('+PONG') || reply.startsWith('-NOAUTH');
}

export interface StartRedisOptions {
  /** Extra server arguments (e.g. `['--requirepass', 'x']`). */
  readonly args?: readonly string[];
  /** Append the server's output to this file instead of dropping it. */
  readonly logFile?: string;
}

/** Starts a redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawnRedis(port, options.args ?? [], undefined, options.logFile);
    await waitUntil(`redis-server on ${port}`, START_TIMEOUT_MS, () => answers(port));
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: (signal = 'SIGTERM') => {
      const c = child;
      child = undefined;
      // A frozen process cannot act on SIGTERM; let it.
      c?.kill('SIGCONT');
      return stopChild(c, signal, STOP_GRACE_MS);
    },
    start,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    pid: () => child?.pid,
  };
}

/** A three-master Redis Cluster on loopback. */
export interface RedisClusterHandle {
  readonly ports: readonly number[];
  /** `redis://127.0.0.1:<port>` of every node (seed list for createCluster). */
  readonly urls: readonly string[];
  /** Stops node `i` (its slots become unavailable; no replicas). */
  stopNode(i: number): Promise<void>;
  /** Starts node `i` again on its port with its cluster config; waits for cluster_state:ok. */
  startNode(i: number): Promise<void>;
  /** Stops every node and removes the cluster's temporary directory. */
  stop(): Promise<void>;
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free ports, joins them with
 * `redis-cli --cluster create … --cluster-replicas 0`, and waits for cluster_state:ok on all.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'passage-cluster-'));
  const children: (ChildProcess | undefined)[] = [];
  const ports: number[] = [];
  const spawnNode = (i: number) => {
    const port = ports[i] as number;
    children[i] = spawnRedis(
      port,
      [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${i}.conf`),
        '--cluster-node-timeout',
        '5000',
        '--dir',
        dir,
      ],
      dir,
    );
  };
  const clusterOk = async () => {
    for (const port of ports) {
      await waitUntil(`cluster_state:ok on ${port}`, CLUSTER_OK_TIMEOUT_MS, async () =>
        (await rawCommand(port, 'CLUSTER INFO')).includes('cluster_state:ok'),
      );
    }
  };
  const stop = async () => {
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', STOP_GRACE_MS)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i += 1) {
      ports.push(await freePort());
      spawnNode(i);
    }
    for (const port of ports) {
      await waitUntil(`cluster node on ${port}`, START_TIMEOUT_MS, () => answers(port));
    }
    await execFileAsync('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await clusterOk();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    urls: ports.map((p) => `redis://127.0.0.1:${p}`),
    async stopNode(i) {
      const child = children[i];
      children[i] = undefined;
      await stopChild(child, 'SIGTERM', STOP_GRACE_MS);
    },
    async startNode(i) {
      spawnNode(i);
      await waitUntil(`cluster node on ${ports[i]}`, START_TIMEOUT_MS, () =>
        answers(ports[i] as number),
      );
      await clusterOk();
    },
    stop,
  };
}

function newClient(url: string) {
  return createClient({ url });
}

/** Runs `use` with a fresh client connected to the node at `url`, and destroys it afterwards. */
async function withClient<T>(
  url: string,
  use: (client: ReturnType<typeof newClient>) => Promise<T>,
): Promise<T> {
  const client = newClient(url);
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

/**
 * Every key on the node at `url` whose PTTL is -1 (a key without expiry). The store promises
 * there is never one; tests call this after a workload and expect an empty list.
 */
export function keysWithoutTtl(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const found: string[] = [];
    for await (const keys of client.scanIterator({ COUNT: 1000 })) {
      for (const key of keys) {
        if ((await client.pTTL(key)) === -1) found.push(key);
      }
    }
    return found;
  });
}

/** How many keys the node at `url` holds (to check that a workload wrote something at all). */
export function keyCount(url: string): Promise<number> {
  return withClient(url, (client) => client.dbSize());
}

/** How many of `keys` exist on the node at `url`. */
export function existingKeys(url: string, keys: readonly string[]): Promise<number> {
  return withClient(url, (client) => client.exists([...keys]));
}

/** Sends one command to the node at `url` and returns the reply (for checks tests make). */
export function redisCommand(url: string, args: readonly string[]): Promise<unknown> {
  return withClient(url, (client) => client.sendCommand([...args]));
}
