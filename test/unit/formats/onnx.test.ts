import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../../../src/core/formats/byteSource';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { decodeOnnxModel, encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import { readOnnx } from '../../../src/core/formats/onnx';
import type { OnnxModel, OnnxTensor } from '../../../src/core/formats/onnxModel';
import { ProtoWriter } from '../../../src/core/formats/protobuf';
import { expected, expectTensorsMatch, FIXTURES } from './fixtureValues';

const onnxFixtures = Object.entries(expected.files).filter(([, e]) => e.format === 'onnx');
const fixturePath = (name: string) => path.join(FIXTURES, name);
const scratch = mkdtempSync(path.join(tmpdir(), 'replens-onnx-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function open(file: string): Promise<ReturnType<typeof readOnnx>> {
  return readOnnx(await FileByteSource.open(file), file);
}

async function expectFormatError(p: Promise<unknown>, pattern: RegExp): Promise<ModelFormatError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFormatError);
  expect((err as Error).message).toMatch(pattern);
  return err as ModelFormatError;
}

/** Reads a possibly damaged model fully; anything thrown must be a ModelFormatError. */
async function readAll(bytes: Uint8Array): Promise<'ok' | 'rejected'> {
  try {
    const file = await readOnnx(new MemoryByteSource('damaged.onnx', bytes), path.join(scratch, 'damaged.onnx'));
    for (const t of file.tensors) await t.toFloat64();
    return 'ok';
  } catch (e) {
    if (!(e instanceof ModelFormatError)) throw e;
    return 'rejected';
  }
}

/** Deterministic byte flips, so a failure reproduces. */
function* lcg(seed: number): Generator<number> {
  let s = seed;
  for (;;) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    yield s;
  }
}

/**
 * Made with python onnx 1.12 (onnx.helper): initializers in float_data, double_data, int64_data
 * (INT64_MAX included), int32_data for INT32/INT16/INT8/UINT8/BOOL/FLOAT16, raw_data, and a STRING
 * tensor; an If node with two subgraphs; attributes of types STRINGS, FLOATS and INTS; and fields
 * RepLens does not model (sparse_initializer, functions, a sequence type, a dimension denotation).
 * Python onnx reports 2 nodes (If, Custom), 11 initializers, 1 function, 1 sparse initializer.
 */
const EXTRAS = new Uint8Array(
  Buffer.from(
    'CAgSBmV4dHJhcxoBMSIEdGVzdCgDMgNkb2M6+wQKtQEKBGNvbmQSAXkaAmlmIgJJZipMCgtlbHNlX2JyYW5jaDI6CiYSAW8iCENvbnN0YW50KhcKBXZhbHVlKgsQASIEAAAAQEIBY6ABBBIDc3ViYgsKAW8SBgoECAESAKABBSpMCgt0aGVuX2JyYW5jaDI6CiYSAW8iCENvbnN0YW50KhcKBXZhbHVlKgsQASIEAACAP0IBY6ABBBIDc3ViYgsKAW8SBgoECAESAKABBTIGYnJhbmNoCl4KAXkSAXoiBkN1c3RvbSoeCgRheGVzQP///////////wFA//////////9/oAEHKhAKBW5hbWVzSgFhSgFioAEIKhUKBnNjYWxlcz0AAAA/PQAAAECgAQY6BWxvY2FsEgZleHRyYXMqIggCCAIQASIQAADAPwAAAMAAAEBAAACAQEIBZmIFdHlwZWQqIQgDEAtCAWRSGAAAAAAAAPQ/AAAAAAAAAEAAAAAAAAAIwCofCAMQBzoU////////////Af//////////fwVCA2k2NCoWCAIQBioL+f//////////AQhCA2kzMioWCAIQBSoL1P3/////////AQdCA2kxNioVCAIQAyoL+f//////////AQhCAmk4Kg0IAhACKgPIAQhCAnU4KgsIAhAJKgIBAEIBYioOCAIQCioFgHyA6AJCAWgqEwgCEAFCA3Jhd0oIAADgQAAAAEEqDAgBEAgyA2FiY0IBc1oXCgRjb25kEg8KDQgJEgkKBxoFQkFUQ0hiCQoBehIECgIIAWoWCgNzZXESDyINCgsKCQgBEgUKAxIBTnofCg4IARABIgQAABBBQgJzdhILCAEQBzoBA0ICc2kYBUIECgAQDUIJCgVsb2NhbBABcgYKAWsSAXbKAS0KBkN1c3RvbSIBYSoBYjoQCgFhEgFiIghJZGVudGl0eUoECgAQDVIFbG9jYWw=',
    'base64',
  ),
);

describe('readOnnx on the committed fixtures', () => {
  it('covers the fixtures the brief lists', () => {
    expect(onnxFixtures.map(([n]) => n)).toEqual(
      expect.arrayContaining([
        'models/repvgg_tiny_train.onnx',
        'models/repvgg_tiny_train_folded.onnx',
        'models/repvgg_tiny_deploy.onnx',
        'models/repvgg_tiny_external.onnx',
        'models/yolov7_repconv_train.onnx',
      ]),
    );
  });

  for (const [name, exp] of onnxFixtures) {
    it(`reads ${name} as python onnx does`, async () => {
      const file = await open(fixturePath(name));
      try {
        expect(file.format).toBe('onnx');
        const { ir_version, producer_name, producer_version, opset_import } = exp.metadata;
        expect(file.metadata).toEqual({ ir_version, producer_name, producer_version, opset_import });
        expect(file.warnings).toEqual([]);
        await expectTensorsMatch(file, exp);

        const graph = file.onnx?.graph;
        if (graph === undefined) throw new Error('no graph');
        const opCounts: Record<string, number> = {};
        for (const n of graph.node) opCounts[n.opType ?? ''] = (opCounts[n.opType ?? ''] ?? 0) + 1;
        expect(opCounts).toEqual(exp.metadata.op_counts);
        const io = (vs: typeof graph.input) =>
          vs.map((v) => ({
            name: v.name,
            shape: v.type?.tensorType?.shape?.dim.map((d) => d.dimValue || d.dimParam),
          }));
        expect(io(graph.input)).toEqual(exp.metadata.inputs);
        expect(io(graph.output)).toEqual(exp.metadata.outputs);
      } finally {
        await file.close();
      }
    });

    it(`re-encodes ${name} byte for byte, from memory and from the file`, async () => {
      const bytes = readFileSync(fixturePath(name));
      expect(Buffer.from(await encodeOnnxModel(decodeOnnxModel(bytes))).equals(bytes)).toBe(true);
      const file = await open(fixturePath(name));
      expect(Buffer.from(await encodeOnnxModel(file.onnx as OnnxModel)).equals(bytes)).toBe(true);
      await file.close();
    });
  }

  it('leaves raw_data in the file: initializers hold file ranges, not bytes', async () => {
    const file = await open(fixturePath('models/repvgg_tiny_train.onnx'));
    const inits = file.onnx?.graph?.initializer ?? [];
    expect(inits.length).toBe(80);
    for (const t of inits) {
      expect(t.rawData).toBeDefined();
      expect(t.rawData).not.toBeInstanceOf(Uint8Array);
    }
    await file.close();
  });

  it('reads the external fixture from its data file', async () => {
    const file = await open(fixturePath('models/repvgg_tiny_external.onnx'));
    const inits = file.onnx?.graph?.initializer ?? [];
    expect(inits.every((t) => t.dataLocation === 1 && t.rawData === undefined)).toBe(true);
    expect(inits[0].externalData.map((e) => [e.key, e.value])).toEqual([
      ['location', 'repvgg_tiny_external.onnx.data'],
      ['offset', '0'],
      ['length', '864'],
    ]);
    await file.close();
  });
});

describe('ONNX data fields and unmodelled fields', () => {
  it('reads typed data fields as python onnx does', async () => {
    const file = await readOnnx(new MemoryByteSource('extras.onnx', EXTRAS), path.join(scratch, 'extras.onnx'));
    const values: Record<string, [string, number[]]> = {};
    for (const t of file.tensors) values[t.name] = [t.dtype, Array.from(await t.toFloat64())];
    expect(values).toEqual({
      f: ['float32', [1.5, -2, 3, 4]],
      d: ['float64', [1.25, 2, -3]],
      i64: ['int64', [-1, 2 ** 63, 5]],
      i32: ['int32', [-7, 8]],
      i16: ['int16', [-300, 7]],
      i8: ['int8', [-7, 8]],
      u8: ['uint8', [200, 8]],
      b: ['bool', [1, 0]],
      h: ['float16', [1.5, -0.25]],
      raw: ['float32', [7, 8]],
    });
    // int64 bytes keep INT64_MAX exactly even though a float64 cannot.
    const i64 = file.tensors.find((t) => t.name === 'i64');
    expect(Array.from(new BigInt64Array((await i64!.readBytes()).slice().buffer))).toEqual([-1n, 2n ** 63n - 1n, 5n]);
    expect(file.warnings).toEqual(["initializer 's' has data type STRING, which RepLens does not read; it is left out of the tensor list"]);
    expect(file.metadata).toEqual({
      ir_version: 8,
      producer_name: 'extras',
      producer_version: '1',
      opset_import: { '': 13, local: 1 },
      domain: 'test',
      model_version: 3,
      doc_string: 'doc',
      metadata_props: { k: 'v' },
    });
  });

  it('decodes nodes, attributes and subgraphs', () => {
    const m = decodeOnnxModel(EXTRAS);
    const [ifNode, custom] = m.graph?.node ?? [];
    expect([ifNode.opType, ifNode.docString, custom.opType, custom.domain]).toEqual(['If', 'branch', 'Custom', 'local']);
    const then = ifNode.attribute.find((a) => a.name === 'then_branch');
    expect(then?.g?.node[0].attribute[0].t?.rawData).toBeUndefined();
    expect(then?.g?.node[0].attribute[0].t?.floatData).toEqual([1]);
    const attrs = Object.fromEntries(custom.attribute.map((a) => [a.name, a]));
    expect(attrs.axes.ints).toEqual([-1n, 2n ** 63n - 1n]);
    expect(attrs.scales.floats).toEqual([0.5, 2]);
    expect(attrs.names.strings.map((s: Uint8Array) => Buffer.from(s).toString())).toEqual(['a', 'b']);
  });

  it('keeps unmodelled fields and re-encodes them where protobuf put them', async () => {
    const m = decodeOnnxModel(EXTRAS);
    expect(m.unknownFields?.length).toBe(1); // functions
    expect(m.graph?.unknownFields?.length).toBe(1); // sparse_initializer
    expect(m.graph?.valueInfo[0].type?.unknownFields?.length).toBe(1); // sequence_type
    expect(m.graph?.input[0].type?.tensorType?.shape?.dim[0].unknownFields?.length).toBe(1); // denotation
    expect(Buffer.from(await encodeOnnxModel(m)).equals(EXTRAS)).toBe(true);
    const fromFile = await readOnnx(new MemoryByteSource('extras.onnx', EXTRAS), path.join(scratch, 'extras.onnx'));
    expect(Buffer.from(await encodeOnnxModel(fromFile.onnx as OnnxModel)).equals(EXTRAS)).toBe(true);
  });

  it('encodes a modified model that decodes back to the change', async () => {
    const m = decodeOnnxModel(readFileSync(fixturePath('models/repvgg_tiny_deploy.onnx')));
    const bias = m.graph?.initializer[1] as OnnxTensor;
    bias.rawData = new Uint8Array(Float32Array.from({ length: 8 }, (_, i) => i).buffer);
    m.graph?.node.pop();
    const again = decodeOnnxModel(await encodeOnnxModel(m));
    expect(again.graph?.node.length).toBe(16);
    expect(Array.from(new Float32Array((again.graph?.initializer[1].rawData as Uint8Array).slice().buffer))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('readOnnx laziness', () => {
  it('does not read a large initializer until it is asked for', async () => {
    const n = 2 * 1024 * 1024;
    const big = new Float32Array(n).map((_, i) => i % 1000);
    const m = decodeOnnxModel(readFileSync(fixturePath('models/repvgg_tiny_deploy.onnx')));
    m.graph?.initializer.unshift({ ...m.graph.initializer[0], name: 'big', dims: [n], rawData: new Uint8Array(big.buffer) });
    const bytes = await encodeOnnxModel(m);
    let read = 0;
    const inner = new MemoryByteSource('big.onnx', bytes);
    const src: ByteSource = {
      name: inner.name,
      size: inner.size,
      read: (o, l) => {
        read += l;
        return inner.read(o, l);
      },
      close: () => inner.close(),
    };
    const file = await readOnnx(src, path.join(scratch, 'big.onnx'));
    expect(bytes.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(read).toBeLessThan(2.5 * 1024 * 1024);
    const values = await file.tensors[0].toFloat32();
    expect(values[999]).toBe(999);
    expect(values[n - 1]).toBe((n - 1) % 1000);
  });
});

describe('readOnnx external data', () => {
  const externalModel = () => decodeOnnxModel(readFileSync(fixturePath('models/repvgg_tiny_external.onnx')));

  async function withFirstEntry(key: string, value: string, dir = 'ext'): Promise<string> {
    const m = externalModel();
    const entry = m.graph?.initializer[0].externalData.find((e) => e.key === key);
    if (entry === undefined) throw new Error(`no ${key}`);
    entry.value = value;
    const folder = path.join(scratch, dir);
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder);
    const target = path.join(folder, 'model.onnx');
    writeFileSync(target, await encodeOnnxModel(m));
    return target;
  }

  it('refuses locations outside the model folder', async () => {
    for (const location of ['../../etc/passwd', '/etc/passwd', '..', '.', 'a/../../x']) {
      const model = await withFirstEntry('location', location);
      await expectFormatError(open(model), /external data location '.*' is outside the model's folder/);
    }
  });

  it('names a missing data file', async () => {
    const model = await withFirstEntry('location', 'repvgg_tiny_external.onnx.data');
    await expectFormatError(open(model), /external data file 'repvgg_tiny_external.onnx.data' \(.*\) not found/);
  });

  it('checks offsets and lengths against the data file and the tensor', async () => {
    copyFileSync(fixturePath('models/repvgg_tiny_external.onnx.data'), path.join(scratch, 'repvgg_tiny_external.onnx.data'));
    const m = externalModel();
    m.graph?.initializer[0].externalData.forEach((e) => {
      if (e.key === 'offset') e.value = '127900';
    });
    writeFileSync(path.join(scratch, 'off.onnx'), await encodeOnnxModel(m));
    await expectFormatError(open(path.join(scratch, 'off.onnx')), /needs bytes 127900..128764 of 'repvgg_tiny_external.onnx.data', which has 127976/);

    const m2 = externalModel();
    m2.graph?.initializer[0].externalData.forEach((e) => {
      if (e.key === 'length') e.value = '4';
    });
    writeFileSync(path.join(scratch, 'len.onnx'), await encodeOnnxModel(m2));
    await expectFormatError(open(path.join(scratch, 'len.onnx')), /external data length 4 does not match 864 bytes/);

    const m3 = externalModel();
    m3.graph?.initializer[0].externalData.forEach((e) => {
      if (e.key === 'offset') e.value = '-1';
    });
    writeFileSync(path.join(scratch, 'neg.onnx'), await encodeOnnxModel(m3));
    await expectFormatError(open(path.join(scratch, 'neg.onnx')), /external data offset '-1' is not a byte count/);
  });
});

describe('readOnnx on damaged input', () => {
  const deploy = readFileSync(fixturePath('models/repvgg_tiny_deploy.onnx'));

  it('rejects truncation at many offsets', async () => {
    const cuts = new Set<number>();
    for (let i = 0; i < 200; i++) cuts.add(i);
    for (let i = 200; i < deploy.length; i += 89) cuts.add(i);
    for (let i = deploy.length - 200; i < deploy.length; i++) cuts.add(i);
    for (const cut of cuts) expect(await readAll(deploy.subarray(0, cut)), `cut at ${cut}`).toBe('rejected');
  });

  it('never lets a flipped byte escape as another kind of error', async () => {
    const rand = lcg(42);
    const outcomes = { ok: 0, rejected: 0 };
    for (let i = 0; i < 400; i++) {
      const copy = new Uint8Array(deploy);
      // Bias towards the structure-dense start and the graph's tail, where tensor data is absent.
      const at = i % 2 === 0 ? rand.next().value % 512 : deploy.length - 1 - (rand.next().value % 4096);
      copy[at] ^= 1 << (rand.next().value % 8);
      outcomes[await readAll(copy)]++;
    }
    expect(outcomes.rejected).toBeGreaterThan(0);
  });

  it('fails fast on a length claiming far more bytes than the file has', async () => {
    const w = new ProtoWriter();
    w.int(1, 7);
    const bytes = Buffer.concat([await w.finish(), Buffer.from([0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02])]);
    await expectFormatError(
      readOnnx(new MemoryByteSource('huge.onnx', bytes), 'huge.onnx'),
      /^huge\.onnx: the file is truncated: it ends at 11 B, inside an ONNX model \(its graph \(field 7\) runs from byte 2 to byte 1125899906842635\); re-save or re-download it$/,
    );
    expect(() => decodeOnnxModel(bytes, 'huge.onnx')).toThrow(ModelFormatError);
  });

  it('stops at the nesting limit instead of overflowing the stack', async () => {
    // graph -> node -> attribute -> graph -> ... 300 levels deep.
    let inner = await new ProtoWriter().finish();
    for (let level = 0; level < 100; level++) {
      const attribute = new ProtoWriter();
      attribute.bytes(6, inner);
      const node = new ProtoWriter();
      node.bytes(5, await attribute.finish());
      const graph = new ProtoWriter();
      graph.bytes(1, await node.finish());
      inner = await graph.finish();
    }
    const model = new ProtoWriter();
    model.int(1, 7);
    model.bytes(7, inner);
    const bytes = await model.finish();
    await expectFormatError(readOnnx(new MemoryByteSource('deep.onnx', bytes), 'deep.onnx'), /nested deeper than 64/);
    expect(() => decodeOnnxModel(bytes)).toThrow(/nested deeper than 64/);
  });

  it('rejects models without the fields ONNX requires', async () => {
    const bytes = readFileSync(fixturePath('models/repvgg_tiny_deploy.onnx'));
    const m = decodeOnnxModel(bytes);
    const variants: [Partial<OnnxModel>, RegExp][] = [
      [{ irVersion: undefined }, /ir_version is missing/],
      [{ graph: undefined }, /it has no graph/],
      [{ opsetImport: [] }, /opset_import is missing/],
    ];
    for (const [change, pattern] of variants) {
      const encoded = await encodeOnnxModel({ ...m, ...change });
      await expectFormatError(readOnnx(new MemoryByteSource('x.onnx', encoded), 'x.onnx'), pattern);
    }
  });

  it('rejects initializers whose data does not match their shape', async () => {
    const m = decodeOnnxModel(readFileSync(fixturePath('models/repvgg_tiny_deploy.onnx')));
    const first = m.graph?.initializer[0] as OnnxTensor;
    first.dims = [8, 3, 3, 4];
    await expectFormatError(
      encodeOnnxModel(m).then((b) => readOnnx(new MemoryByteSource('x.onnx', b), 'x.onnx')),
      /initializer 'stage0.rbr_reparam.weight': raw_data has 864 bytes, shape \[8, 3, 3, 4\] of FLOAT needs 1152/,
    );
    const typed = decodeOnnxModel(EXTRAS);
    (typed.graph?.initializer[0] as OnnxTensor).floatData.pop();
    await expectFormatError(
      encodeOnnxModel(typed).then((b) => readOnnx(new MemoryByteSource('x.onnx', b), 'x.onnx')),
      /initializer 'f': float_data has 3 values, shape \[2, 2\] needs 4/,
    );
  });
});
