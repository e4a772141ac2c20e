import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PAYLOADS } from '../../../scripts/fuzz/pickleMutators';
import { global, pk, unicode } from '../../../scripts/fuzz/pickleOps';
import { runPipeline, type Outcome } from '../../../scripts/fuzz/pipeline';
import { convertFile } from '../../../src/core/convert/convert';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { FIXTURES, MARKER, editDataPkl, fixture, legacyFile, readBytes, torchZip, withRootItem } from './hostileHelpers';

/*
 * Code-execution payloads read, structured and converted end to end: nothing may run,
 * and what comes back names the callables that were not run.
 */

/** Each raw hostile pickle and the callables Python would run for it. */
const RAW: Record<string, string[]> = {
  'reduce_os_system.pkl': ['os.system'],
  'reduce_posix_system.pkl': ['posix.system'],
  'reduce_builtins_eval.pkl': ['builtins.eval'],
  'reduce_builtins_exec.pkl': ['builtins.exec'],
  'reduce_subprocess_popen.pkl': ['subprocess.Popen'],
  'reduce_stack_global.pkl': ['os.system'],
  'reduce_getattr_import.pkl': ['builtins.getattr', 'builtins.__import__'],
  'inst_os_system.pkl': ['os.system'],
  'obj_os_system.pkl': ['os.system'],
  'newobj_bytes_map.pkl': ['builtins.map', 'os.system'],
  'newobj_ex_tuple_map.pkl': ['builtins.map', 'os.system'],
  'build_setstate.pkl': ['os.system'],
};

/** The hostile checkpoints and the callables torch.load would run for each. */
const CHECKPOINTS: Record<string, string[]> = {
  'zip_reduce_os_system.pth': ['os.system'],
  'zip_reduce_builtins_exec.pth': ['builtins.exec'],
  'zip_newobj_bytes_map.pth': ['builtins.map', 'os.system'],
  'zip_build_setstate.pth': ['os.system'],
  'zip_state_dict_with_payload.pth': ['os.system'],
  'legacy_reduce_os_system.pth': ['os.system'],
};

const NOTE = 'file references callables that torch.load() would run but RepLens never executes: ';

/** The warning listing what was not executed, as a list of names. */
function notExecuted(o: Outcome): string[] {
  const w = o.warnings.find((x) => x.startsWith(NOTE));
  return w ? w.slice(NOTE.length).split(', ') : [];
}

/** A result names exactly the callables it did not run; an error is the pickle machine refusing the stream. */
function expectInert(o: Outcome, name: string, calls: string[]): void {
  expect(o.kind, o.message).not.toBe('crash');
  if (o.kind === 'result') {
    expect(notExecuted(o).sort()).toEqual([...calls].sort());
    expect(o.pickleGlobals).toEqual(expect.arrayContaining(calls));
  } else {
    // Shapes refused before the checkpoint is unwrapped: a BUILD with a str state, a call on a placeholder.
    expect(o.errorClass).toBe('ModelFormatError');
    expect(o.message).toMatch(new RegExp(`^${name.replace(/\./g, '\\.')}: pickle: `));
  }
}

beforeEach(() => rmSync(MARKER, { force: true }));
afterEach(() => expect(existsSync(MARKER), `${MARKER} exists: a payload ran`).toBe(false));

describe('hostile pickles inside checkpoints, read and converted', () => {
  it('lists every hostile fixture', () => {
    const files = readdirSync(join(FIXTURES, 'hostile'));
    expect(Object.keys(RAW).sort()).toEqual(files.filter((f) => f.endsWith('.pkl')).sort());
    expect(Object.keys(CHECKPOINTS).sort()).toEqual(files.filter((f) => f.endsWith('.pth')).sort());
  });

  for (const [file, calls] of Object.entries(RAW)) {
    const pkl = fixture(`hostile/${file}`);
    const containers = {
      'torch zip': () => torchZip([{ name: 'archive/data.pkl', data: pkl, method: 0 }]),
      'legacy file': () => legacyFile(pkl),
    };
    for (const [container, build] of Object.entries(containers)) {
      it(`${file} as the pickle of a ${container}: nothing runs, and what is not run is named`, async () => {
        expectInert(await runPipeline(build(), 'hostile.pth'), 'hostile.pth', calls);
      });
    }
  }

  for (const [file, calls] of Object.entries(CHECKPOINTS)) {
    it(`${file}: read, structure and conversion run nothing, and what is not run is named`, async () => {
      expectInert(await runPipeline(fixture(`hostile/${file}`), file), file, calls);
    });
  }
});

describe('payloads hidden in a real RepVGG checkpoint', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'replens-hostile-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const clean = fixture('models/repvgg_tiny_train.pth');

  /** Converts `bytes` (written as `<tmp>/<dir>/model.pth`) to `<tmp>/<dir>/model.deploy.pth`. */
  async function convert(dir: string, bytes: Uint8Array) {
    rmSync(join(tmp, dir), { recursive: true, force: true });
    mkdirSync(join(tmp, dir));
    const input = join(tmp, dir, 'model.pth');
    writeFileSync(input, bytes);
    const output = join(tmp, dir, 'model.deploy.pth');
    const result = await convertFile(input, { output }).catch((e: unknown) => e);
    return { result, output };
  }

  let cleanOutput: Buffer;
  beforeAll(async () => {
    const { result, output } = await convert('clean', clean);
    expect(result).toMatchObject({ blocksFused: 7 });
    cleanOutput = readFileSync(output);
  });

  // Shapes the pickle machine refuses outright: a BUILD with a str state, a call on a placeholder's result.
  const REFUSED = new Set(['BUILD __setstate__ os.system', 'REDUCE getattr(__import__("os"), "system")']);

  for (const payload of PAYLOADS) {
    it(`an extra "evil" entry built by ${payload.name}: conversion gives the same file, or refuses clearly`, async () => {
      const bytes = editDataPkl(clean, (pkl) => withRootItem(pkl, 'evil', payload.ops));
      const { result, output } = await convert('evil', bytes);
      expect(result instanceof Error, String(result)).toBe(REFUSED.has(payload.name));
      if (result instanceof Error) {
        expect(result).toBeInstanceOf(ModelFormatError);
        expect(result.message).toMatch(/model\.pth: pickle: /);
        expect(existsSync(output)).toBe(false);
        return;
      }
      expect(result).toMatchObject({ blocksFused: 7 });
      expect((result as { warnings: string[] }).warnings).toContain(`${NOTE}${payload.calls.join(', ')}`);
      expect(readFileSync(output).equals(cleanOutput), 'the payload changed the converted file').toBe(true);
      const model = await readBytes(new Uint8Array(readFileSync(output)));
      expect(model.tensors.map((t) => t.name)).not.toContain('evil');
      expect(model.metadata.pickleGlobals).toBeUndefined();
    });
  }

  it('a payload in place of a BatchNorm tensor: the block is refused by name, nothing runs', async () => {
    // A later SETITEM replaces the value in place, so the payload sits where running_var was.
    const bytes = editDataPkl(clean, (pkl) => withRootItem(pkl, 'stage1.0.rbr_dense.bn.running_var', PAYLOADS[0].ops));
    const m = await readBytes(bytes);
    expect(m.warnings).toContain(`${NOTE}os.system`);
    expect(m.metadata['stage1.0.rbr_dense.bn.running_var']).toBe('<os.system object>');
    const { result, output } = await convert('bn', bytes);
    expect(result).toBeInstanceOf(FusionError);
    expect((result as FusionError).block).toBe('stage1.0');
    expect((result as FusionError).reason).toBe('stage1.0.rbr_dense.conv has no complete BatchNorm');
    expect(existsSync(output)).toBe(false);
  });

  it('a payload as a storage type: refused while reading, naming it', async () => {
    // The first tensor's persistent id names os.system where torch.FloatStorage was.
    const bytes = editDataPkl(clean, (pkl) => {
      const from = pk(global('torch', 'FloatStorage'));
      const at = Buffer.from(pkl).indexOf(Buffer.from(from));
      return pk(pkl.subarray(0, at), global('os', 'system'), pkl.subarray(at + from.length));
    });
    const { result } = await convert('storage', bytes);
    expect(result).toBeInstanceOf(ModelFormatError);
    expect((result as Error).message).toMatch(/storage type is global os\.system$/);
  });

  it("a payload as the wrapped checkpoint's optimizer: the state dict still converts", async () => {
    const wrapped = fixture('models/repvgg_tiny_wrapped.pth.tar');
    const bytes = editDataPkl(wrapped, (pkl) => withRootItem(pkl, 'optimizer', PAYLOADS[0].ops));
    const { result } = await convert('wrapped', bytes);
    expect(result).toMatchObject({ blocksFused: 7, droppedPrefix: 'module.' });
    expect((result as { warnings: string[] }).warnings).toContain(`${NOTE}os.system`);
  });

  it('a payload under a wrapper key ("state_dict") is not taken for the weights', async () => {
    const bytes = editDataPkl(clean, (pkl) => withRootItem(pkl, 'state_dict', pk(global('os', 'system'), unicode('stage0.rbr_dense.conv.weight'), 0x85, 0x52)));
    const m = await readBytes(bytes);
    const cleanModel = await readBytes(clean);
    expect(m.metadata.stateDictKey).toBeUndefined();
    expect(m.tensors.map((t) => t.name)).toEqual(cleanModel.tensors.map((t) => t.name));
    expect(m.warnings).toContain(`${NOTE}os.system`);
  });
});
