/**
 * The flood bench's flooder on a worker thread (testing/src/flood.ts, `flood`): its proofs-of-work
 * are synchronous, and on the thread of the legitimate clients they delayed their sends and
 * deliveries by the flooder's own CPU, which the bench then counted against the relay. Started by
 * flood-bench.ts with the task as workerData; any message from the parent stops it, and it
 * answers with what the flooder got.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { flood, type FlooderTask } from '@passage/testing/flood';

if (parentPort === null) throw new Error('flood-worker.js runs as a worker thread');
const port = parentPort;
let flooding = true;
port.once('message', () => {
  flooding = false;
});
const stats = await flood(workerData as FlooderTask, () => flooding);
port.postMessage(stats);
port.close();
