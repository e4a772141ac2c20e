import type { ModuleInfo } from '../formats/modelFile';

export interface TensorMeta {
  name: string;
  shape: readonly number[];
}

/** State-dict names split into module path and parameter name, so blocks can be found by module. */
export class ModuleIndex {
  private readonly byModule = new Map<string, Map<string, TensorMeta>>();
  private readonly attributes = new Map<string, Record<string, unknown>>();

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
    for (const m of modules) this.attributes.set(m.path, m.attributes);
  }

  /** Module paths in the order their first tensor appears. */
  modules(): string[] {
    return [...this.byModule.keys()];
  }

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

  hasAttributes(module: string): boolean {
    return this.attributes.has(module);
  }
}

export function joinPath(prefix: string, suffix: string): string {
  return prefix === '' ? suffix : `${prefix}.${suffix}`;
}
