/**
 * The inference worker, bundled as dist/parityWorker.js and started with child_process.fork.
 * ONNX Runtime is native code: running it here means a crash or a runaway model costs this
 * process, never the VS Code extension host or the CLI that started it.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { Comparison } from './compare';
import type { Feed, InferRequest, ParityRequest, SessionSpec, WorkerMessage, WorkerRequest } from './protocol';
import { loadOnnxRuntime } from './runtime';

/**
 * Loaded when the first request arrives rather than imported: a RepLens package without ONNX
 * Runtime for this platform (the universal VSIX) then answers that request with what is missing.
 */
let ort: typeof Ort;

/** An error that says which model it came from. */
class ModelError extends Error {
  constructor(
    readonly subject: string,
    message: string,
  ) {
    super(message);
  }
}

const send = (m: WorkerMessage) => process.send!(m);
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Opens the model as it is, or with spec.addedOutputs for the comparison. */
async function open(spec: SessionSpec, level: 'disabled' | 'all', use: 'as is' | 'with added outputs' = 'as is'): Promise<Ort.InferenceSession> {
  const options: Ort.InferenceSession.SessionOptions = { graphOptimizationLevel: level, executionProviders: ['cpu'] };
  const { source, addedOutputs } = spec;
  try {
    if (use === 'with added outputs' && addedOutputs) {
      const model = 'path' in source ? await readFile(source.path) : source.bytes;
      // Loaded from bytes, ONNX Runtime would look for external data in the working directory, not beside the model.
      if ('path' in source) options.extra = { session: { model_external_initializers_file_folder_path: path.dirname(source.path) } };
      return await ort.InferenceSession.create(Buffer.concat([model, addedOutputs]), options);
    }
    return 'path' in source ? await ort.InferenceSession.create(source.path, options) : await ort.InferenceSession.create(source.bytes, options);
  } catch (e) {
    throw new ModelError(spec.label, `ONNX Runtime could not load the model: ${messageOf(e)}`);
  }
}

function feedsOf(feeds: readonly Feed[], rename: Record<string, string> = {}): Record<string, Ort.Tensor> {
  return Object.fromEntries(feeds.map((f) => [rename[f.name] ?? f.name, new ort.Tensor('float32', f.data, f.dims)]));
}

async function run(session: Ort.InferenceSession, spec: SessionSpec, feeds: Record<string, Ort.Tensor>, fetches: readonly string[]) {
  try {
    return await session.run(feeds, [...fetches]);
  } catch (e) {
    throw new ModelError(spec.label, `inference failed: ${messageOf(e)}`);
  }
}

function floats(t: Ort.Tensor, spec: SessionSpec, name: string): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new ModelError(spec.label, `output '${name}' is ${t.type}, not float32`);
  return t.data;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Median run time of each session over `runs` runs, after one untimed run each (the first run
 * allocates and plans). The two alternate, so a load change on the machine hits both alike.
 */
async function latencies(sessions: { session: Ort.InferenceSession; spec: SessionSpec; feeds: Record<string, Ort.Tensor> }[], runs: number): Promise<(number | null)[]> {
  if (runs <= 0) return sessions.map(() => null);
  for (const s of sessions) await run(s.session, s.spec, s.feeds, s.session.outputNames);
  const times: number[][] = sessions.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [j, s] of sessions.entries()) {
      const t = performance.now();
      await run(s.session, s.spec, s.feeds, s.session.outputNames);
      times[j].push(performance.now() - t);
    }
  }
  return times.map(median);
}

async function parity(req: ParityRequest): Promise<WorkerMessage> {
  const total = req.samples.length;
  send({ type: 'progress', phase: 'load', done: 0, total: 2 });
  // The reference keeps every node as written, so ORT's own Conv+BN folding cannot hide a difference.
  const reference = await open(req.reference, 'disabled', 'with added outputs');
  send({ type: 'progress', phase: 'load', done: 1, total: 2 });
  const candidate = await open(req.candidate, 'all', 'with added outputs');
  send({ type: 'progress', phase: 'load', done: 2, total: 2 });

  const comparisons = req.pairs.map(() => new Comparison(req.tolerance));
  const refFetch = [...new Set(req.pairs.map((p) => p.reference))];
  const candFetch = [...new Set(req.pairs.map((p) => p.candidate))];
  for (const [i, sample] of req.samples.entries()) {
    send({ type: 'progress', phase: 'sample', done: i, total });
    const a = await run(reference, req.reference, feedsOf(sample), refFetch);
    const b = await run(candidate, req.candidate, feedsOf(sample, req.inputMap), candFetch);
    req.pairs.forEach((p, j) => {
      const ra = a[p.reference];
      const rb = b[p.candidate];
      comparisons[j].add(floats(ra, req.reference, p.reference), floats(rb, req.candidate, p.candidate), ra.dims, rb.dims);
    });
  }
  send({ type: 'progress', phase: 'sample', done: total, total });
  await reference.release();

  // Latency with ORT's default optimizations for both forms, on the models as they are (an added
  // output keeps ORT from fusing the node that computes it with the next): what a deployment would see.
  send({ type: 'progress', phase: 'latency', done: 0, total: 1 });
  const timedReference = await open(req.reference, 'all');
  let timedCandidate = candidate;
  if (req.candidate.addedOutputs) {
    await candidate.release();
    timedCandidate = await open(req.candidate, 'all');
  }
  const [latencyRef, latencyCand] = await latencies(
    [
      { session: timedReference, spec: req.reference, feeds: feedsOf(req.samples[0]) },
      { session: timedCandidate, spec: req.candidate, feeds: feedsOf(req.samples[0], req.inputMap) },
    ],
    req.latencyRuns,
  );
  await timedReference.release();
  await timedCandidate.release();
  send({ type: 'progress', phase: 'latency', done: 1, total: 1 });
  return { type: 'parity-result', metrics: comparisons.map((c) => c.result()), latencyMs: { reference: latencyRef, candidate: latencyCand } };
}

async function infer(req: InferRequest): Promise<WorkerMessage> {
  const session = await open(req.model, req.optimization);
  const result = await run(session, req.model, feedsOf(req.feeds), session.outputNames);
  const outputs = session.outputNames.map((name) => ({ name, dims: [...result[name].dims], data: floats(result[name], req.model, name) }));
  await session.release();
  return { type: 'infer-result', outputs };
}

process.on('message', (req: WorkerRequest) => {
  try {
    ort ??= loadOnnxRuntime();
  } catch (e) {
    send({ type: 'error', subject: 'worker', message: messageOf(e), code: 'runtime' });
    return;
  }
  (req.type === 'parity' ? parity(req) : infer(req)).then(send, (e: unknown) =>
    send({ type: 'error', subject: e instanceof ModelError ? e.subject : 'worker', message: messageOf(e) }),
  );
});
// The caller went away (or is done with us): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
