import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ParityError } from './errors';
import type { InferReply, ParityReply, ProgressMessage, WorkerMessage, WorkerRequest } from './workerMessages';

export interface ChildOptions {
  /**
   * The bundled worker. Defaults to parityWorker.js beside the running bundle (dist/ for the
   * CLI and the extension); code run from source (tests) passes one it built.
   */
  workerPath?: string;
  /** Default 600. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  onProgress?: (m: ProgressMessage) => void;
  /** Names what is being run, in error messages. */
  subject: string;
}

export const DEFAULT_TIMEOUT_SECONDS = 600;
const STDERR_TAIL = 2000;

export function defaultWorkerPath(): string {
  return path.join(__dirname, 'parityWorker.js');
}

/**
 * Sends one request to a fresh worker process and waits for its reply. The child is killed on
 * reply, timeout or abort; if it dies first, the error says how (exit code or signal) and
 * carries the end of its stderr.
 */
export function runInChild(request: WorkerRequest & { type: 'parity' }, options: ChildOptions): Promise<ParityReply>;
export function runInChild(request: WorkerRequest & { type: 'infer' }, options: ChildOptions): Promise<InferReply>;
export function runInChild(request: WorkerRequest, options: ChildOptions): Promise<ParityReply | InferReply> {
  const { subject, signal } = options;
  const workerPath = options.workerPath ?? defaultWorkerPath();
  const timeout = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (signal?.aborted) return Promise.reject(new ParityError(subject, 'cancelled', 'cancelled'));
  if (!existsSync(workerPath)) {
    return Promise.reject(new ParityError(subject, `the inference worker ${workerPath} is missing (npm run build makes it)`, 'crashed'));
  }
  // No inherited execArgv: the extension host's --inspect flags or a test runner's loaders must not reach the worker.
  const child = fork(workerPath, [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_TAIL)));
  const withStderr = (reason: string) => (stderr.trim() ? `${reason}; its last output:\n${stderr.trim()}` : reason);

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      action();
    };
    const timer = setTimeout(() => settle(() => reject(new ParityError(subject, `inference timed out after ${timeout} s`, 'timeout'))), timeout * 1000);
    const onAbort = () => settle(() => reject(new ParityError(subject, 'cancelled', 'cancelled')));
    signal?.addEventListener('abort', onAbort, { once: true });

    child.on('message', (m: WorkerMessage) => {
      // Messages the worker sent before it was stopped may still arrive: nothing is reported after the end.
      if (settled) return;
      if (m.type === 'progress') options.onProgress?.(m);
      else if (m.type === 'error' && m.code === 'runtime') settle(() => reject(new ParityError(subject, m.message, 'runtime')));
      else if (m.type === 'error') settle(() => reject(new ParityError(m.subject, m.message, 'inference')));
      else settle(() => resolve(m));
    });
    child.on('error', (e) => settle(() => reject(new ParityError(subject, `the inference process failed: ${e.message}`, 'crashed'))));
    // 'close' comes after stderr is drained, so the tail is complete.
    child.on('close', (code, sig) =>
      settle(() =>
        reject(
          new ParityError(
            subject,
            withStderr(sig ? `the inference process was killed by ${sig}` : `the inference process exited with code ${code}`),
            'crashed',
          ),
        ),
      ),
    );
    child.send(request);
  });
}
