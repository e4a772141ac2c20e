import { parentPort } from 'node:worker_threads';
import type { GraphSpec } from './graphSpec';
import { layoutGraph } from './layout';
import { messageOf } from '../formats/errors';

/** Runs layouts off the caller's thread: large graphs take seconds and must not stall VS Code. */
parentPort?.on('message', (msg: { id: number; spec: GraphSpec }) => {
  try {
    parentPort!.postMessage({ id: msg.id, view: layoutGraph(msg.spec) });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: messageOf(e) });
  }
});
