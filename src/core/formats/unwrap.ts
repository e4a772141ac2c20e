import type { ModuleInfo, WeightsChoice, WeightsSlot } from './modelFile';
import { PyDict, PyFloat, PyGlobal, PyNative, PyObject, PySet, describeType, type PyValue } from './pickle';
import type { Tensor } from './tensor';
import { TorchTensorRef } from './torchObjects';

/*
 * Turns whatever torch.save() was given into the flat, ordered state dict
 * the rest of RepLens works on: a bare state dict, a training checkpoint
 * wrapping one, or a whole pickled nn.Module (walked the way
 * Module.state_dict() walks it).
 */

export interface Unwrapped {
  tensors: Tensor[];
  metadata: Record<string, unknown>;
  modules?: ModuleInfo[];
  /** The module and the key holding it, when the weights are an eager pickled module. */
  pickled?: { root: PyValue; key?: string; module: PyObject };
  weights?: WeightsChoice;
  warnings: string[];
}

export interface UnwrapOptions {
  /** The top-level key to take the weights from, instead of the one the family's own tools would take. */
  weights?: string;
}

/** Checkpoint keys that usually hold the weights, in the order they are tried when there is no EMA slot. */
const WRAPPER_KEYS = ['state_dict', 'model', 'model_state_dict', 'net', 'module'];

function slotKind(v: PyValue | undefined): WeightsSlot['holds'] | undefined {
  if (isModule(v) || isScripted(v)) return 'module';
  return holdsWeights(v) ? 'state dict' : undefined;
}

/** Every top-level key of a checkpoint dict that holds a module or a state dict, in file order. */
function slotsOf(root: PyDict): WeightsSlot[] {
  const slots: WeightsSlot[] = [];
  for (const [k, v] of root.items) {
    const holds = typeof k === 'string' ? slotKind(v) : undefined;
    if (holds) slots.push({ key: k as string, holds });
  }
  return slots;
}

/**
 * EMA slots, in the order the model's own tools look for them. YOLOv5/v6/v7 and Ultralytics evaluate
 * and export `ckpt['ema'] if ckpt.get('ema') else ckpt['model']`; timm's loaders read 'state_dict_ema'
 * (then 'model_ema') by default. mmpretrain is not here: its EMA hook saves the averaged weights
 * under 'state_dict' itself.
 */
const EMA_SLOTS: readonly (readonly [string, string])[] = [
  ['ema', 'the EMA weights, which YOLO projects evaluate and export when a checkpoint has them'],
  ['state_dict_ema', "the EMA weights, which timm's loaders read by default"],
  ['model_ema', "the EMA weights, which timm's loaders read by default"],
];

/** The slot the model's own tools load, and why. */
function defaultSlot(slots: readonly WeightsSlot[]): { key: string; reason: string } | undefined {
  const keys = slots.map((s) => s.key);
  const alsoIn = (key: string) => {
    const rest = keys.filter((k) => k !== key).map((k) => `'${k}'`);
    return rest.length ? ` (also in the file: ${rest.join(', ')})` : '';
  };
  const ema = EMA_SLOTS.find(([key]) => keys.includes(key));
  if (ema) return { key: ema[0], reason: `${ema[1]}${alsoIn(ema[0])}` };
  const key = WRAPPER_KEYS.find((k) => keys.includes(k)) ?? keys[0];
  if (key === undefined) return undefined;
  return { key, reason: keys.length > 1 ? `the usual key for a model's weights${alsoIn(key)}` : 'the only key that holds weights' };
}

function chooseSlot(root: PyDict, options: UnwrapOptions): WeightsChoice | undefined {
  const slots = slotsOf(root);
  if (options.weights !== undefined) {
    if (!slots.some((s) => s.key === options.weights)) {
      const listed = slots.length
        ? `its weights are under ${slots.map((s) => `'${s.key}'`).join(', ')}`
        : 'it is a plain state dict, with no checkpoint keys to choose from';
      throw new WeightsSlotError(`has no weights under '${options.weights}': ${listed}`);
    }
    return { key: options.weights, reason: 'chosen', slots };
  }
  const picked = defaultSlot(slots);
  return picked && { ...picked, slots };
}

/** Modules whose functions a pickle has no business calling; naming them earns a warning. */
const SUSPICIOUS_MODULES = [
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'shutil',
  'socket',
  'importlib',
  'runpy',
  'pty',
  'webbrowser',
  'ctypes',
  'marshal',
  'pickle',
  '_pickle',
  'cPickle',
  'dill',
  'code',
  'codeop',
  'commands',
  'multiprocessing',
  'signal',
  'asyncio',
  'threading',
  '_thread',
  'tempfile',
  'types',
  'platform',
  'urllib',
  'http',
  'requests',
  'ftplib',
  'smtplib',
  'telnetlib',
  'pdb',
  'bdb',
  'timeit',
  'trace',
  'profile',
  'cProfile',
  'site',
  'zipimport',
  'pkgutil',
  'inspect',
  'operator',
  'io',
  'torch.hub',
  'torch.jit',
];

/** builtins a model pickle may legitimately name (plain types); any other builtin is a code-execution gadget. */
const PLAIN_BUILTINS = new Set([
  'set',
  'frozenset',
  'slice',
  'list',
  'dict',
  'tuple',
  'bytearray',
  'bytes',
  'object',
  'complex',
  'int',
  'float',
  'str',
  'bool',
  'range',
  'Ellipsis',
  'NotImplemented',
  'long',
  'unicode',
]);

/** A weights slot was asked for that the checkpoint does not have; the reader adds the file's name. */
export class WeightsSlotError extends Error {}

const MAX_MODULE_DEPTH = 256;
/** Module attributes bigger than this (nodes visited) are left out rather than copied. */
const PLAIN_BUDGET = 10_000;
const SUMMARY_DEPTH = 4;
const SUMMARY_ITEMS = 32;
const SUMMARY_STRING = 1000;

export function isSuspiciousGlobal(qualified: string): boolean {
  for (const builtins of ['builtins.', '__builtin__.']) {
    if (qualified.startsWith(builtins)) return !PLAIN_BUILTINS.has(qualified.slice(builtins.length));
  }
  return SUSPICIOUS_MODULES.some((m) => qualified === m || qualified.startsWith(`${m}.`));
}

function isModule(v: PyValue | undefined): v is PyObject {
  if (!(v instanceof PyObject)) return false;
  const attrs = v.attributes();
  return attrs.get('_modules') instanceof PyDict && attrs.get('_parameters') instanceof PyDict;
}

function holdsWeights(v: PyValue | undefined): boolean {
  if (isModule(v)) return true;
  if (!(v instanceof PyDict)) return false;
  for (const x of v.items.values()) if (x instanceof TorchTensorRef) return true;
  return false;
}

/** JSON-friendly view of a value: small things verbatim, big or exotic things as a one-line description. */
export function summarize(v: PyValue, depth = 0): unknown {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return v.length > SUMMARY_STRING ? `${v.slice(0, SUMMARY_STRING)}… (${v.length} characters)` : v;
  if (v instanceof Uint8Array) return `<bytes, ${v.length}>`;
  if (Array.isArray(v)) {
    if (v.length > SUMMARY_ITEMS || depth >= SUMMARY_DEPTH) return `[…] (${v.length} items)`;
    return v.map((x: PyValue) => summarize(x, depth + 1));
  }
  if (v instanceof PySet) {
    if (v.items.size > SUMMARY_ITEMS || depth >= SUMMARY_DEPTH) return `{…} (set, ${v.items.size} items)`;
    return [...v.items].map((x) => summarize(x, depth + 1));
  }
  if (v instanceof PyDict) {
    const state = v.get('state');
    if (v.get('param_groups') !== undefined && state instanceof PyDict) return `{…} (optimizer state, ${state.items.size} entries)`;
    if (v.items.size > SUMMARY_ITEMS || depth >= SUMMARY_DEPTH) return `{…} (${v.items.size} entries)`;
    const out: Record<string, unknown> = {};
    for (const [k, x] of v.items) out[typeof k === 'string' ? k : String(summarize(k, SUMMARY_DEPTH))] = summarize(x, depth + 1);
    return out;
  }
  if (v instanceof PyFloat) return v.value;
  if (v instanceof PyNative) return `<${v.describe()}>`;
  if (v instanceof PyGlobal) return `<${v.qualifiedName}>`;
  return isModule(v) ? `<${v.className} module>` : `<${describeType(v)}>`;
}

/**
 * The value as JSON when it is plain data (None, bool, int, float, str, and
 * lists, tuples and dicts of those); undefined otherwise.
 */
function plainValue(v: PyValue, budget: { left: number }, depth = 0): unknown {
  if (--budget.left < 0 || depth > 16) return undefined;
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const x of v as readonly PyValue[]) {
      const p = plainValue(x, budget, depth + 1);
      if (p === undefined) return undefined;
      out.push(p);
    }
    return out;
  }
  if (v instanceof PyDict) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v.items) {
      const p = plainValue(x, budget, depth + 1);
      if ((typeof k !== 'string' && typeof k !== 'number') || p === undefined) return undefined;
      out[String(k)] = p;
    }
    return out;
  }
  return undefined;
}

class Collector {
  readonly tensors: Tensor[] = [];
  readonly warnings: string[] = [];
  readonly modules: ModuleInfo[] = [];
  private readonly skipped = new Map<string, string[]>();

  addTensor(name: string, v: PyValue): void {
    if (v instanceof TorchTensorRef) {
      const t = v.toTensor(name);
      if (t) this.tensors.push(t);
      else this.skip(`element type ${v.storage.type.name}`, name);
    } else {
      this.skip(describeType(v), name);
    }
  }

  private skip(reason: string, name: string): void {
    const names = this.skipped.get(reason) ?? [];
    names.push(name);
    this.skipped.set(reason, names);
  }

  /** One warning per reason, so a file of 500 quantized tensors does not bury everything else. */
  finishWarnings(): void {
    for (const [reason, names] of this.skipped) {
      const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
      this.warnings.push(`skipped entries RepLens cannot read (${reason}): ${shown}`);
    }
  }

  /** Module.state_dict() order: own tensors, then each child in turn, depth first. */
  walkModule(m: PyObject, path: string, layout: ModuleLayout, ancestors: Set<PyObject>): void {
    if (ancestors.size >= MAX_MODULE_DEPTH) {
      this.warnings.push(`module tree deeper than ${MAX_MODULE_DEPTH} at '${path}'; deeper modules were not read`);
      return;
    }
    const attrs = m.attributes();
    const prefix = path === '' ? '' : `${path}.`;
    const attributes: Record<string, unknown> = {};
    for (const [k, v] of attrs) {
      if (typeof k !== 'string' || k.startsWith('_') || v instanceof TorchTensorRef || layout.isModule(v)) continue;
      const p = plainValue(v, { left: PLAIN_BUDGET });
      if (p !== undefined) attributes[k] = p;
    }
    this.modules.push({ path, className: layout.className(m), attributes });

    const { tensors, children } = layout.parts(attrs);
    for (const [name, t] of tensors) this.addTensor(prefix + name, t);
    ancestors.add(m);
    for (const [name, child] of children) {
      const childPath = prefix + name;
      if (!layout.isModule(child)) this.warnings.push(`submodule '${childPath}' is ${describeType(child)}, not a module; skipped`);
      else if (ancestors.has(child)) this.warnings.push(`submodule '${childPath}' contains itself; not walked again`);
      else this.walkModule(child, childPath, layout, ancestors);
    }
    ancestors.delete(m);
  }
}

interface ModuleLayout {
  isModule(v: PyValue | undefined): v is PyObject;
  className(m: PyObject): string;
  /** The module's own state-dict tensors and its child modules, each in order. */
  parts(attrs: Map<PyValue, PyValue>): { tensors: [string, PyValue][]; children: [string, PyValue][] };
}

/** A pickled nn.Module: tensors in _parameters and _buffers, children in _modules. */
const EAGER: ModuleLayout = {
  isModule,
  className: (m) => m.className,
  parts(attrs) {
    const tensors: [string, PyValue][] = [];
    const children: [string, PyValue][] = [];
    const params = attrs.get('_parameters');
    if (params instanceof PyDict) {
      for (const [name, p] of params.items) if (p !== null) tensors.push([String(name), p]);
    }
    const buffers = attrs.get('_buffers');
    const nonPersistent = attrs.get('_non_persistent_buffers_set');
    if (buffers instanceof PyDict) {
      for (const [name, b] of buffers.items) {
        if (b !== null && !(nonPersistent instanceof PySet && nonPersistent.items.has(name))) tensors.push([String(name), b]);
      }
    }
    const modules = attrs.get('_modules');
    if (modules instanceof PyDict) {
      for (const [name, child] of modules.items) if (child !== null) children.push([String(name), child]);
    }
    return { tensors, children };
  },
};

function isScripted(v: PyValue | undefined): v is PyObject {
  return v instanceof PyObject && v.module.startsWith('__torch__');
}

/**
 * A TorchScript archive's data.pkl: each module is a flat object whose
 * attributes are its tensors and submodules. Which tensors are parameters is
 * recorded only in the compiled code, so every tensor attribute is listed.
 */
const SCRIPTED: ModuleLayout = {
  isModule: isScripted,
  // '__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d' -> 'torch.nn.modules.conv.Conv2d'
  className: (m) => m.className.replace(/^__torch__\./, '').replace(/___torch_mangle_\d+\./g, ''),
  parts(attrs) {
    const tensors: [string, PyValue][] = [];
    const children: [string, PyValue][] = [];
    for (const [k, v] of attrs) {
      if (v instanceof TorchTensorRef) tensors.push([String(k), v]);
      else if (isScripted(v)) children.push([String(k), v]);
    }
    return { tensors, children };
  },
};

/**
 * @param root the unpickled top-level object
 * @param placeholderGlobals globals the pickle named that RepLens did not implement
 */
export function unwrapCheckpoint(root: PyValue, placeholderGlobals: readonly string[], options: UnwrapOptions = {}): Unwrapped {
  const c = new Collector();
  const metadata: Record<string, unknown> = {};
  let weights: PyValue = root;
  let choice: WeightsChoice | undefined;

  if (!(root instanceof PyDict) && options.weights !== undefined) {
    throw new WeightsSlotError(`has no weights under '${options.weights}': it holds ${describeType(root)}, with no checkpoint keys to choose from`);
  }
  if (root instanceof PyDict) {
    choice = chooseSlot(root, options);
    const key = choice?.key;
    if (key !== undefined) {
      weights = root.get(key) ?? null;
      metadata.stateDictKey = key;
    }
    for (const [k, v] of root.items) {
      const isWeights = key !== undefined ? k === key : v instanceof TorchTensorRef;
      if (!isWeights) metadata[String(k)] = summarize(v);
    }
  }

  const layout = isModule(weights) ? EAGER : isScripted(weights) ? SCRIPTED : undefined;
  if (layout) {
    c.walkModule(weights as PyObject, '', layout, new Set());
  } else if (weights instanceof PyDict) {
    const extras: Record<string, unknown> = {};
    for (const [k, v] of weights.items) {
      const name = String(k);
      if (v instanceof TorchTensorRef) c.addTensor(name, v);
      else if (weights === root)
        continue; // non-tensors of a bare top-level dict are already in metadata
      else if (v instanceof PyObject)
        c.addTensor(name, v); // e.g. a quantized tensor: reported as skipped
      else extras[name] = summarize(v);
    }
    if (Object.keys(extras).length > 0) metadata.nonTensorEntries = extras;
  } else {
    metadata.content = summarize(root);
  }
  c.finishWarnings();
  if (c.tensors.length === 0) c.warnings.push(`no tensors found (the file holds ${describeType(weights)})`);
  if (c.tensors.length > 0 && c.tensors.every((t) => t.name.startsWith('module.'))) metadata.prefix = 'module.';

  if (placeholderGlobals.length > 0) metadata.pickleGlobals = [...placeholderGlobals];
  const suspicious = placeholderGlobals.filter(isSuspiciousGlobal);
  if (suspicious.length > 0) {
    c.warnings.push(`file references callables that torch.load() would run but RepLens never executes: ${suspicious.join(', ')}`);
  }
  const pickled = layout === EAGER ? { root, key: choice?.key, module: weights as PyObject } : undefined;
  return { tensors: c.tensors, metadata, modules: layout ? c.modules : undefined, pickled, weights: choice, warnings: c.warnings };
}
