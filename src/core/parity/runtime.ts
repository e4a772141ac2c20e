import type * as Ort from 'onnxruntime-node';
import { messageOf } from '../formats/errors';

/**
 * The platforms onnxruntime-node ships a native binary for (`bin/napi-v6/<platform>/<arch>/`), as
 * `<platform>-<arch>`: one RepLens VSIX each (scripts/package-all.mjs). Everywhere else (darwin-x64
 * among them) the universal VSIX, which carries no ONNX Runtime, is the only one VS Code can install.
 */
export const ORT_PLATFORMS = ['win32-x64', 'win32-arm64', 'darwin-arm64', 'linux-x64', 'linux-arm64'] as const;

const WITHOUT_IT = 'converting and inspecting models work without it; the parity check needs it';

/**
 * What the parity check says when ONNX Runtime cannot be loaded in this process (the inference
 * worker): the one place that says what is missing and what to install. `loadError` is the error
 * of require('onnxruntime-node'), or undefined when the module (or its binary for this platform)
 * is simply not there, as in the universal VSIX.
 */
export function runtimeUnavailableMessage(platform: string = process.platform, arch: string = process.arch, loadError?: string): string {
  const target = `${platform}-${arch}`;
  if (!(ORT_PLATFORMS as readonly string[]).includes(target)) {
    return `ONNX Runtime for Node.js (onnxruntime-node) has no build for ${target}, so no RepLens package carries one for it (it ships for ${ORT_PLATFORMS.join(', ')}); ${WITHOUT_IT}`;
  }
  if (loadError !== undefined) {
    return `ONNX Runtime for ${target} is in this RepLens package but could not be loaded: ${loadError}; ${WITHOUT_IT}`;
  }
  return `this RepLens package has no ONNX Runtime for ${target}; install the VSIX for your platform, replens-${target}.vsix (see "Install the extension" in the README); ${WITHOUT_IT}`;
}

/** True when `e` says that onnxruntime-node, or its native binding for this platform, is not installed. */
function isMissing(e: unknown): boolean {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'MODULE_NOT_FOUND' || typeof message !== 'string') return false;
  // The module itself, or binding.js's require(`../bin/napi-v6/${platform}/${arch}/onnxruntime_binding.node`).
  return /Cannot find module '(onnxruntime-node|[^']*onnxruntime_binding\.node)'/.test(message);
}

/**
 * require('onnxruntime-node'), or an Error whose message is runtimeUnavailableMessage's. Called by
 * the worker when its first request arrives, so that a missing runtime is an answer (ParityError
 * code 'runtime'), not a crash with a stack trace.
 */
export function loadOnnxRuntime(): typeof Ort {
  try {
    // Left to Node's require at run time: the bundles keep onnxruntime-node external (scripts/build.mjs).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('onnxruntime-node') as typeof Ort;
  } catch (e) {
    const detail = isMissing(e) ? undefined : firstLine(e);
    throw new Error(runtimeUnavailableMessage(process.platform, process.arch, detail), { cause: e });
  }
}

function firstLine(e: unknown): string {
  const text = messageOf(e);
  return text.split('\n', 1)[0].trim();
}
