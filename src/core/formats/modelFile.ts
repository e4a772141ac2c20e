import type { OnnxModel } from './onnxModel';
import type { PyObject, PyValue } from './pickle';
import type { Tensor } from './tensor';

export type ModelFormat = 'torch-zip' | 'torch-legacy' | 'onnx' | 'safetensors';

/** Attributes of one module in a pickled nn.Module tree, keyed by its state-dict prefix. */
export interface ModuleInfo {
  /** Module path as in state_dict keys ('' for the root). */
  path: string;
  /** Python class, e.g. 'torch.nn.modules.conv.Conv2d' or 'models.repvgg.RepVGGBlock'. */
  className: string;
  /** Plain attributes (stride, padding, groups, eps, ...) as JSON-like values. */
  attributes: Record<string, unknown>;
}

/** A top-level key of a training checkpoint that holds weights. */
export interface WeightsSlot {
  key: string;
  holds: 'module' | 'state dict';
}

/** Which of a checkpoint's weights were read, and why. */
export interface WeightsChoice {
  key: string;
  /** Why this slot: the rule the model's own tools follow, or 'chosen' when the caller named it. */
  reason: string;
  /** Every slot that holds weights, in file order. */
  slots: WeightsSlot[];
}

/** A whole pickled nn.Module (torch.save(model), or a checkpoint slot holding one), kept so a deploy checkpoint can be written in the same form. */
export interface PickledModule {
  /** The unpickled top-level object. */
  root: PyValue;
  /** The checkpoint key holding the module; undefined when the module is the top-level object. */
  key?: string;
  module: PyObject;
}

/** What every reader returns: the neutral model the rest of RepLens works on. */
export interface ModelFile {
  path: string;
  format: ModelFormat;
  /** Tensors in file order (state-dict order for checkpoints), bytes not yet read. */
  tensors: Tensor[];
  /** Non-tensor content: checkpoint extras (epoch, optimizer summary), safetensors __metadata__, ONNX producer. */
  metadata: Record<string, unknown>;
  /** Modules with attributes when the file holds a full pickled model. */
  modules?: ModuleInfo[];
  /** The pickled module itself, when the file holds an eager (not TorchScript) one. */
  pickled?: PickledModule;
  /** For a checkpoint that wraps its weights in a dict: which slot was read, and the others. */
  weights?: WeightsChoice;
  warnings: string[];
  /** The decoded ModelProto of an ONNX file (initializer raw_data left in the file), for structure detection and rewriting. */
  onnx?: OnnxModel;
  close(): Promise<void>;
}
