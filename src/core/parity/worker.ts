/**
 * The inference worker, bundled as dist/parityWorker.js and started with child_process.fork.
 * ONNX Runtime is native code: running it here means a crash or a runaway model costs this
 * process, never the VS Code extension host or the CLI that started it.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { Comparison } from './compare';
import type { Feed, InferRequest, ParityReply, ParityRequest, SessionSpec, WorkerMessage, WorkerRequest } from './workerMessages';
import { loadOnnxRuntime } from './runtime';
import { messageOf } from '../formats/errors';

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

async function runSession(session: Ort.InferenceSession, spec: SessionSpec, feeds: Record<string, Ort.Tensor>, fetches: readonly string[]) {
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
async function latencies(sessions: { session: Ort.InferenceSession; spec: SessionSpec; feeds: Record<string, Ort.Tensor> }[], runs: number): Promise<number[]> {
  for (const s of sessions) await runSession(s.session, s.spec, s.feeds, s.session.outputNames);
  const times: number[][] = sessions.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [j, s] of sessions.entries()) {
      const t = performance.now();
      await runSession(s.session, s.spec, s.feeds, s.session.outputNames);
      times[j].push(performance.now() - t);
    }
  }
  return times.map(median);
}

/** Runs every sample through one model and keeps the fetched outputs: one model is in memory at a time. */
async function outputsOf(
  spec: SessionSpec,
  req: ParityRequest,
  fetches: readonly string[],
  model: 'reference' | 'candidate',
): Promise<Ort.InferenceSession.OnnxValueMapType[]> {
  const total = req.samples.length;
  send({ type: 'progress', phase: 'load', model, done: 0, total });
  // As written, no optimizations: ONNX Runtime's own Conv+BN folding cannot hide a difference, and
  // neither model's weights are copied into another layout (the session maps them from the file).
  const session = await open(spec, 'disabled', 'with added outputs');
  const outputs: Ort.InferenceSession.OnnxValueMapType[] = [];
  try {
    for (const [i, sample] of req.samples.entries()) {
      send({ type: 'progress', phase: 'sample', model, done: i, total });
      outputs.push(await runSession(session, spec, feedsOf(sample, model === 'candidate' ? req.inputMap : {}), fetches));
    }
  } finally {
    await session.release();
  }
  send({ type: 'progress', phase: 'sample', model, done: total, total });
  return outputs;
}

async function parity(req: ParityRequest): Promise<WorkerMessage> {
  const refFetch = [...new Set(req.pairs.map((p) => p.reference))];
  const candFetch = [...new Set(req.pairs.map((p) => p.candidate))];
  const reference = await outputsOf(req.reference, req, refFetch, 'reference');
  const candidate = await outputsOf(req.candidate, req, candFetch, 'candidate');
  const metrics = req.pairs.map((p) => {
    const comparison = new Comparison(req.tolerance);
    req.samples.forEach((_, i) => {
      const a = reference[i][p.reference] as Ort.Tensor;
      const b = candidate[i][p.candidate] as Ort.Tensor;
      comparison.add(floats(a, req.reference, p.reference), floats(b, req.candidate, p.candidate), a.dims, b.dims);
    });
    return comparison.result();
  });
  return { type: 'parity-result', metrics, latencyMs: req.latencyRuns > 0 ? await latency(req) : { reference: null, candidate: null } };
}

/**
 * Latency with ONNX Runtime's default optimizations, on the models as they are (an added output
 * keeps ORT from fusing the node that computes it with the next): what a deployment would see.
 * Asked for separately: these sessions re-lay out every weight, which on a large model costs more
 * than the comparison itself.
 */
async function latency(req: ParityRequest): Promise<ParityReply['latencyMs']> {
  send({ type: 'progress', phase: 'latency', done: 0, total: 1 });
  const reference = await open(req.reference, 'all');
  try {
    const candidate = await open(req.candidate, 'all');
    try {
      const [ref, cand] = await latencies(
        [
          { session: reference, spec: req.reference, feeds: feedsOf(req.samples[0]) },
          { session: candidate, spec: req.candidate, feeds: feedsOf(req.samples[0], req.inputMap) },
        ],
        req.latencyRuns,
      );
      send({ type: 'progress', phase: 'latency', done: 1, total: 1 });
      return { reference: ref, candidate: cand };
    } finally {
      await candidate.release();
    }
  } finally {
    await reference.release();
  }
}

async function infer(req: InferRequest): Promise<WorkerMessage> {
  const session = await open(req.model, req.optimization);
  const result = await runSession(session, req.model, feedsOf(req.feeds), session.outputNames);
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
