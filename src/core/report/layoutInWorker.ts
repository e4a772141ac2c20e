import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { GraphSpec } from './graphSpec';
import { layoutGraph } from './layout';
import type { GraphView } from '../../shared/reportData';

/**
 * Lays out in a worker thread when the bundled worker is beside this code (the
 * extension and CLI builds); in unit tests, where it is not, in the calling thread.
 */
export async function layoutInWorker(spec: GraphSpec, workerFile = path.join(__dirname, 'layoutWorker.js')): Promise<GraphView> {
  if (!existsSync(workerFile)) return layoutGraph(spec);
  // dagre walks long chains recursively: give it a deep stack rather than a shallow graph.
  const worker = new Worker(workerFile, { resourceLimits: { stackSizeMb: 256 } });
  try {
    return await new Promise<GraphView>((resolve, reject) => {
      worker.once('message', (m: { view?: GraphView; error?: string }) => (m.view ? resolve(m.view) : reject(new Error(`graph layout failed: ${m.error}`))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`graph layout worker exited with code ${code}`)));
      worker.postMessage({ id: 1, spec });
    });
  } finally {
    await worker.terminate();
  }
}
