import type { PickledModule } from '../formats/modelFile';
import { PyDict, PyObject, PySet, type PyValue } from '../formats/pickle';
import { TorchTensorRef } from '../formats/torchObjects';
import { familyById } from '../model/families';
import type { Block } from '../model/structure';
import { NewTensor } from '../writers/modulePickle';
import type { OutputTensor } from '../writers/outputTensor';

/**
 * A deploy checkpoint in the input's own whole-module form: the pickled model the input held,
 * with each fused block's train branches replaced by one conv with bias under the family's deploy
 * name, as the family's own switch_to_deploy / fuse_repvgg_block / reparameterize leaves it, so the
 * project's loaders (YOLOv7 attempt_load, YOLOv6 load_checkpoint) take it as they take the input.
 * Nothing is executed: the objects are the reader's records of the input's, edited.
 */

export interface DeployModule {
  /** What to pickle: the module, or a checkpoint dict holding it. */
  root: PyValue;
  /** The key the module is under in `root`, if it is in a dict. */
  key?: string;
  /** The module's class, e.g. 'models.yolo.Model'. */
  className: string;
  /** The output tensors in the order the written module's state_dict() lists them. */
  tensors: OutputTensor[];
}

/** Flags a block's own deploy switch sets (RepVGG, YOLOv6, YOLOv7, mmpretrain: deploy; MobileOne: inference_mode). */
const DEPLOY_FLAGS = ['deploy', 'inference_mode'];

/** Why the whole-module form cannot be written, so the caller writes a state dict and says so. */
export class NoModuleFormError extends Error {}

function stateOf(m: PyObject): PyDict {
  if (!(m.state instanceof PyDict)) throw new NoModuleFormError(`module ${m.className} has no attribute dict`);
  return m.state;
}

function dictAttr(m: PyObject, name: string): PyDict | undefined {
  const v = stateOf(m).get(name);
  return v instanceof PyDict ? v : undefined;
}

/** Modules by state-dict path, as Module.named_modules() walks them. */
function modulesByPath(root: PyObject): Map<string, PyObject> {
  const out = new Map<string, PyObject>();
  const walk = (m: PyObject, path: string) => {
    if (out.has(path)) return;
    out.set(path, m);
    for (const [name, child] of dictAttr(m, '_modules')?.items ?? []) {
      if (child instanceof PyObject) walk(child, path === '' ? String(name) : `${path}.${String(name)}`);
    }
  };
  walk(root, '');
  return out;
}

/** State-dict names of a module's tensors (parameters and persistent buffers), depth first, as Module.state_dict() orders them. */
function stateDictNames(m: PyObject, path: string, out: string[] = []): string[] {
  const prefix = path === '' ? '' : `${path}.`;
  for (const [name, t] of dictAttr(m, '_parameters')?.items ?? []) if (t !== null) out.push(prefix + String(name));
  const nonPersistent = stateOf(m).get('_non_persistent_buffers_set');
  for (const [name, t] of dictAttr(m, '_buffers')?.items ?? []) {
    if (t !== null && !(nonPersistent instanceof PySet && nonPersistent.items.has(name))) out.push(prefix + String(name));
  }
  for (const [name, child] of dictAttr(m, '_modules')?.items ?? []) if (child instanceof PyObject) stateDictNames(child, prefix + String(name), out);
  return out;
}

/** Every state-dict tensor of the module tree becomes the output tensor of that name (a NewTensor the writer stores). */
function replaceStateTensors(modules: Map<string, PyObject>, outputs: Map<string, OutputTensor>): void {
  for (const [path, m] of modules) {
    const prefix = path === '' ? '' : `${path}.`;
    for (const slot of ['_parameters', '_buffers']) {
      const dict = dictAttr(m, slot);
      if (!dict) continue;
      for (const [name, t] of dict.items) {
        const out = outputs.get(prefix + String(name));
        if (!out || !(t instanceof TorchTensorRef)) continue;
        dict.items.set(name, new NewTensor(out.name, out.dtype, out.shape, t.parameter));
      }
    }
  }
}

/** The block's k×k conv module, copied, holding the fused weight and bias as parameters. */
function deployConv(block: Block, modules: Map<string, PyObject>, outputs: Map<string, OutputTensor>, deployPath: string): PyObject {
  const main =
    block.branches.find((b) => b.role === 'dense' && b.convWeight) ?? block.branches.find((b) => b.convWeight && b.weightShape?.[2] === block.kernel);
  const convPath = main?.convWeight?.replace(/\.weight$/, '');
  const conv = convPath === undefined ? undefined : modules.get(convPath);
  if (!conv) throw new NoModuleFormError(`block '${block.name}' has no k×k conv module to hold its fused weight`);
  const weight = outputs.get(`${deployPath}.weight`);
  const bias = outputs.get(`${deployPath}.bias`);
  if (!weight || !bias) throw new NoModuleFormError(`block '${block.name}' has no fused weight and bias`);
  const state = new PyDict();
  for (const [k, v] of stateOf(conv).items) state.items.set(k, v);
  const params = new PyDict('collections.OrderedDict');
  const requiresGrad = (dictAttr(conv, '_parameters')?.get('weight') as TorchTensorRef | undefined)?.parameter?.requiresGrad ?? true;
  params.items.set('weight', new NewTensor(weight.name, weight.dtype, weight.shape, { requiresGrad }));
  params.items.set('bias', new NewTensor(bias.name, bias.dtype, bias.shape, { requiresGrad }));
  state.items.set('_parameters', params);
  const copy = new PyObject(conv.cls, conv.args, conv.kwargs, conv.made);
  copy.state = state;
  return copy;
}

/**
 * Swaps the block's train branches (the children all of whose tensors were fused) for the deploy
 * conv, at the first one's place, and sets the block's deploy flag.
 */
function toDeploy(block: Block, modules: Map<string, PyObject>, outputs: Map<string, OutputTensor>): void {
  const m = modules.get(block.name);
  const children = m && dictAttr(m, '_modules');
  if (!m || !children) throw new NoModuleFormError(`block '${block.name}' is not a module in the pickled model`);
  const deployName = familyById(block.family).deploy;
  const deployPath = `${block.name}.${deployName}`;
  const conv = deployConv(block, modules, outputs, deployPath);
  const fused = new Set(block.tensors.filter((n) => !outputs.has(n)));
  const rebuilt = new PyDict(children.className);
  let placed = false;
  for (const [name, child] of children.items) {
    const names = child instanceof PyObject ? stateDictNames(child, `${block.name}.${String(name)}`) : [];
    if (names.length > 0 && names.every((n) => fused.has(n))) {
      if (!placed) rebuilt.items.set(deployName, conv);
      placed = true;
    } else if (name !== deployName) {
      rebuilt.items.set(name, child);
    }
  }
  if (!placed) throw new NoModuleFormError(`block '${block.name}' has no train branch module to replace`);
  const state = stateOf(m);
  state.items.set('_modules', rebuilt);
  // An attribute of the deploy name (timm's `reparam_conv = None`) would hide the module from Python's attribute lookup.
  state.items.delete(deployName);
  for (const flag of DEPLOY_FLAGS) if (typeof state.get(flag) === 'boolean') state.items.set(flag, true);
}

/**
 * Edits the pickled model (which the caller owns and discards) into its deploy form. Throws
 * NoModuleFormError when the model's objects do not fit the blocks found in its state dict.
 */
export function deployModule(pickled: PickledModule, fused: readonly Block[], tensors: readonly OutputTensor[]): DeployModule {
  const outputs = new Map(tensors.map((t) => [t.name, t]));
  const modules = modulesByPath(pickled.module);
  replaceStateTensors(modules, outputs);
  for (const block of fused) toDeploy(block, modules, outputs);
  const order = stateDictNames(pickled.module, '');
  const listed = new Set(order);
  const missing = tensors.filter((t) => !listed.has(t.name));
  if (order.length !== tensors.length || missing.length > 0) {
    throw new NoModuleFormError(
      `the edited model lists ${order.length} tensors where ${tensors.length} were produced${missing.length ? ` (not '${missing[0].name}')` : ''}`,
    );
  }
  // YOLO loaders read ckpt['ema'] when it is set, else ckpt['model']: the deploy weights go under 'model'.
  const key = pickled.key === undefined ? undefined : pickled.key === 'ema' ? 'model' : pickled.key;
  let root: PyValue = pickled.module;
  if (key !== undefined) {
    const dict = new PyDict();
    dict.items.set(key, pickled.module);
    root = dict;
  }
  return { root, key, className: pickled.module.className, tensors: order.map((name) => outputs.get(name)!) };
}
