import type { ModuleInfo } from '../formats/modelFile';

export interface TensorMeta {
  name: string;
  shape: readonly number[];
}

/** State-dict names split into module path and parameter name, so blocks can be found by module. */
export class ModuleIndex {
  private readonly byModule = new Map<string, Map<string, TensorMeta>>();
  private readonly attributes = new Map<string, Record<string, unknown>>();
  private readonly classes = new Map<string, string>();

  constructor(
    readonly tensors: readonly TensorMeta[],
    modules: readonly ModuleInfo[] = [],
  ) {
    for (const t of tensors) {
      const dot = t.name.lastIndexOf('.');
      const module = dot < 0 ? '' : t.name.slice(0, dot);
      const param = t.name.slice(dot + 1);
      let params = this.byModule.get(module);
      if (!params) this.byModule.set(module, (params = new Map()));
      params.set(param, t);
    }
    for (const m of modules) {
      this.attributes.set(m.path, m.attributes);
      this.classes.set(m.path, m.className);
    }
  }

  /** Whether the file is a pickled module tree (not a bare state dict): modules without tensors are then seen too. */
  get hasModuleTree(): boolean {
    return this.classes.size > 0;
  }

  /** The Python class of a module of a pickled module tree ('torch.nn.modules.linear.Identity'); undefined in a state dict or for a module the tree does not have. */
  className(module: string): string | undefined {
    return this.classes.get(module);
  }

  /** Module paths in the order their first tensor appears. */
  modules(): string[] {
    return [...this.byModule.keys()];
  }

  /** Whether the module has tensors of its own. */
  has(module: string): boolean {
    return this.byModule.has(module);
  }

  get(module: string, param: string): TensorMeta | undefined {
    return this.byModule.get(module)?.get(param);
  }

  params(module: string): TensorMeta[] {
    return [...(this.byModule.get(module)?.values() ?? [])];
  }

  /** A numeric attribute of a module (PyTorch stores stride etc. as tuples; their first entry is taken). */
  numberAttribute(module: string, name: string): number | undefined {
    const value = this.attributes.get(module)?.[name];
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === 'number' && Number.isFinite(first) ? first : undefined;
  }

  /** A boolean attribute of a module (AvgPool2d's count_include_pad, ...). */
  booleanAttribute(module: string, name: string): boolean | undefined {
    const value = this.attributes.get(module)?.[name];
    return typeof value === 'boolean' ? value : undefined;
  }

  hasAttributes(module: string): boolean {
    return this.attributes.has(module);
  }
}

export function joinPath(prefix: string, suffix: string): string {
  return prefix === '' ? suffix : `${prefix}.${suffix}`;
}
