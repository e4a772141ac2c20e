import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../../src/core/formats/errors';
import {
  PickleEndOfInput,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  isList,
  isTuple,
  unpickle,
  type PyValue,
  type UnpickleOptions,
  type UnpickleResult,
} from '../../../src/core/formats/pickle';
import { summarize } from '../../../src/core/formats/unwrap';
import { ZipArchive } from '../../../src/core/formats/zip';
import { MemoryByteSource } from '../../../src/core/formats/byteSource';

const FIXTURES = join(__dirname, '../../fixtures');
const MARKER = '/tmp/replens-pwned-marker';

/** Assemble a pickle: numbers are single bytes, strings are latin-1 bytes, arrays are spliced in. */
function pk(...parts: (number | string | Uint8Array | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (let i = 0; i < p.length; i++) out.push(p.charCodeAt(i) & 0xff);
    else out.push(...p);
  }
  return Uint8Array.from(out);
}
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u64 = (n: bigint) => Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));

function load(bytes: Uint8Array, opts: Partial<UnpickleOptions> = {}): UnpickleResult {
  return unpickle(bytes, 0, { file: 'test.pkl', ...opts });
}
const value = (bytes: Uint8Array, opts: Partial<UnpickleOptions> = {}) => load(bytes, opts).value;

function expectError(f: () => unknown, pattern: RegExp): ModelFormatError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as ModelFormatError).file).toBe('test.pkl');
    expect((e as Error).message).toMatch(pattern);
    return e as ModelFormatError;
  }
  throw new Error('expected a ModelFormatError');
}

/** A comparable rendering that keeps the Python types apart (tuple vs list, bytes vs str, int vs bigint). */
function norm(v: PyValue): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (isTuple(v)) return { tuple: v.map(norm) };
  if (isList(v)) return v.map(norm);
  if (v instanceof PyDict) return { [v.className]: [...v.items].map(([k, x]) => [norm(k), norm(x)]) };
  if (v instanceof PySet) return { [v.frozen ? 'frozenset' : 'set']: [...v.items].map(norm) };
  if (v instanceof PyObject) return { object: v.className, args: v.args.map(norm), state: v.state === undefined ? undefined : norm(v.state) };
  if (v instanceof PyGlobal) return { global: v.qualifiedName };
  if (v instanceof PyFloat) return { float: v.value };
  return v;
}

/** pickle.dumps(obj, protocol=N) of the object in EXPECTED, by CPython 3.11. */
const PYTHON_PICKLES: Record<number, string> = {
  0: 'KGRwMApWaW50cwpwMQoobHAyCkkwCmFJMQphSS0xCmFJMjU1CmFJMjU2CmFJNjU1MzUKYUk2NTUzNgphSS0yMTQ3NDgzNjQ4CmFJMjE0NzQ4MzY0NwphTDIxNDc0ODM2NDhMCmFMOTAwNzE5OTI1NDc0MDk5MkwKYUwtOTIyMzM3MjAzNjg1NDc3NTgwOEwKYUwxMTgwNTkxNjIwNzE3NDExMzAzNDI0TAphc1ZmbG9hdHMKcDMKKGxwNApGMC41CmFGLTFlKzMwMAphRjFlLTA1CmFGaW5mCmFzVnN0cgpwNQoobHA2ClYKcDcKYVZhc2NpaQpwOAphVvxu76n4ZOkgXFUwMDAxZjYwMApwOQphVnh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eApwMTAKYVZxdW90ZSciXHUwMDVjXHUwMDBhCnAxMQphc1ZieXRlcwpwMTIKKGxwMTMKY19fYnVpbHRpbl9fCmJ5dGVzCnAxNAoodFJwMTUKYWNfY29kZWNzCmVuY29kZQpwMTYKKFZcdTAwMDD/XHUwMDBhCnAxNwpWbGF0aW4xCnAxOAp0cDE5ClJwMjAKYWcxNgooVnl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eQpwMjEKZzE4CnRwMjIKUnAyMwphc1Zub25lCnAyNApOc1Zib29scwpwMjUKKEkwMQpJMDAKdHAyNgpzVnR1cGxlcwpwMjcKKGxwMjgKKHRhKEkxCnRwMjkKYShJMQpJMgp0cDMwCmEoSTEKSTIKSTMKdHAzMQphKEkxCkkyCkkzCkk0CnRwMzIKYXNWc2V0CnAzMwpjX19idWlsdGluX18Kc2V0CnAzNAooKGxwMzUKSTEKYUkyCmF0cDM2ClJwMzcKc1ZmcwpwMzgKY19fYnVpbHRpbl9fCmZyb3plbnNldApwMzkKKChscDQwClZhCnA0MQphdHA0MgpScDQzCnNWbmVzdGVkCnA0NAooZHA0NQpWawpwNDYKKGxwNDcKKGxwNDgKSTEKYWEobHA0OQpJMgphYXNJMwpWaW50IGtleQpwNTAKc3NWc2hhcmVkCnA1MQoobHA1MgoobHA1MwpJNwphYWc1Mwphc1ZvZApwNTQKY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnA1NQoodFJwNTYKVmIKcDU3CkkxCnNnNDEKSTIKc3Mu',
  1: 'fXEAKFgEAAAAaW50c3EBXXECKEsASwFK/////0v/TQABTf//SgAAAQBKAAAAgEr///9/TDIxNDc0ODM2NDhMCkw5MDA3MTk5MjU0NzQwOTkyTApMLTkyMjMzNzIwMzY4NTQ3NzU4MDhMCkwxMTgwNTkxNjIwNzE3NDExMzAzNDI0TAplWAYAAABmbG9hdHNxA11xBChHP+AAAAAAAABH/jfkPIgAdZxHPuT4tYjjaPFHf/AAAAAAAABlWAMAAABzdHJxBV1xBihYAAAAAHEHWAUAAABhc2NpaXEIWBEAAADDvG7Dr8Kpw7hkw6kg8J+YgHEJWCwBAAB4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHhxClgJAAAAcXVvdGUnIlwKcQtlWAUAAABieXRlc3EMXXENKGNfX2J1aWx0aW5fXwpieXRlcwpxDilScQ9jX2NvZGVjcwplbmNvZGUKcRAoWAQAAAAAw78KcRFYBgAAAGxhdGluMXESdHETUnEUaBAoWCwBAAB5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXlxFWgSdHEWUnEXZVgEAAAAbm9uZXEYTlgFAAAAYm9vbHNxGShJMDEKSTAwCnRxGlgGAAAAdHVwbGVzcRtdcRwoKShLAXRxHShLAUsCdHEeKEsBSwJLA3RxHyhLAUsCSwNLBHRxIGVYAwAAAHNldHEhY19fYnVpbHRpbl9fCnNldApxIihdcSMoSwFLAmV0cSRScSVYAgAAAGZzcSZjX19idWlsdGluX18KZnJvemVuc2V0CnEnKF1xKFgBAAAAYXEpYXRxKlJxK1gGAAAAbmVzdGVkcSx9cS0oWAEAAABrcS5dcS8oXXEwSwFhXXExSwJhZUsDWAcAAABpbnQga2V5cTJ1WAYAAABzaGFyZWRxM11xNChdcTVLB2FoNWVYAgAAAG9kcTZjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcTcpUnE4KFgBAAAAYnE5SwFoKUsCdXUu',
  2: 'gAJ9cQAoWAQAAABpbnRzcQFdcQIoSwBLAUr/////S/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAigcAAAAAAAAgiggAAAAAAAAAgIoJAAAAAAAAAABAZVgGAAAAZmxvYXRzcQNdcQQoRz/gAAAAAAAAR/435DyIAHWcRz7k+LWI42jxR3/wAAAAAAAAZVgDAAAAc3RycQVdcQYoWAAAAABxB1gFAAAAYXNjaWlxCFgRAAAAw7xuw6/CqcO4ZMOpIPCfmIBxCVgsAQAAeHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4cQpYCQAAAHF1b3RlJyJcCnELZVgFAAAAYnl0ZXNxDF1xDShjX19idWlsdGluX18KYnl0ZXMKcQ4pUnEPY19jb2RlY3MKZW5jb2RlCnEQWAQAAAAAw78KcRFYBgAAAGxhdGluMXEShnETUnEUaBBYLAEAAHl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXEVaBKGcRZScRdlWAQAAABub25lcRhOWAUAAABib29sc3EZiImGcRpYBgAAAHR1cGxlc3EbXXEcKClLAYVxHUsBSwKGcR5LAUsCSwOHcR8oSwFLAksDSwR0cSBlWAMAAABzZXRxIWNfX2J1aWx0aW5fXwpzZXQKcSJdcSMoSwFLAmWFcSRScSVYAgAAAGZzcSZjX19idWlsdGluX18KZnJvemVuc2V0CnEnXXEoWAEAAABhcSlhhXEqUnErWAYAAABuZXN0ZWRxLH1xLShYAQAAAGtxLl1xLyhdcTBLAWFdcTFLAmFlSwNYBwAAAGludCBrZXlxMnVYBgAAAHNoYXJlZHEzXXE0KF1xNUsHYWg1ZVgCAAAAb2RxNmNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApxNylScTgoWAEAAABicTlLAWgpSwJ1dS4=',
  3: 'gAN9cQAoWAQAAABpbnRzcQFdcQIoSwBLAUr/////S/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAigcAAAAAAAAgiggAAAAAAAAAgIoJAAAAAAAAAABAZVgGAAAAZmxvYXRzcQNdcQQoRz/gAAAAAAAAR/435DyIAHWcRz7k+LWI42jxR3/wAAAAAAAAZVgDAAAAc3RycQVdcQYoWAAAAABxB1gFAAAAYXNjaWlxCFgRAAAAw7xuw6/CqcO4ZMOpIPCfmIBxCVgsAQAAeHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4cQpYCQAAAHF1b3RlJyJcCnELZVgFAAAAYnl0ZXNxDF1xDShDAHEOQwMA/wpxD0IsAQAAeXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5cRBlWAQAAABub25lcRFOWAUAAABib29sc3ESiImGcRNYBgAAAHR1cGxlc3EUXXEVKClLAYVxFksBSwKGcRdLAUsCSwOHcRgoSwFLAksDSwR0cRllWAMAAABzZXRxGmNidWlsdGlucwpzZXQKcRtdcRwoSwFLAmWFcR1ScR5YAgAAAGZzcR9jYnVpbHRpbnMKZnJvemVuc2V0CnEgXXEhWAEAAABhcSJhhXEjUnEkWAYAAABuZXN0ZWRxJX1xJihYAQAAAGtxJ11xKChdcSlLAWFdcSpLAmFlSwNYBwAAAGludCBrZXlxK3VYBgAAAHNoYXJlZHEsXXEtKF1xLksHYWguZVgCAAAAb2RxL2Njb2xsZWN0aW9ucwpPcmRlcmVkRGljdApxMClScTEoWAEAAABicTJLAWgiSwJ1dS4=',
  4: 'gASV/gMAAAAAAAB9lCiMBGludHOUXZQoSwBLAUr/////S/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAigcAAAAAAAAgiggAAAAAAAAAgIoJAAAAAAAAAABAZYwGZmxvYXRzlF2UKEc/4AAAAAAAAEf+N+Q8iAB1nEc+5Pi1iONo8Ud/8AAAAAAAAGWMA3N0cpRdlCiMAJSMBWFzY2lplIwRw7xuw6/CqcO4ZMOpIPCfmICUWCwBAAB4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHiUjAlxdW90ZSciXAqUZYwFYnl0ZXOUXZQoQwCUQwMA/wqUQiwBAAB5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXmUZYwEbm9uZZROjAVib29sc5SIiYaUjAZ0dXBsZXOUXZQoKUsBhZRLAUsChpRLAUsCSwOHlChLAUsCSwNLBHSUZYwDc2V0lI+UKEsBSwKQjAJmc5QojAFhlJGUjAZuZXN0ZWSUfZQojAFrlF2UKF2USwFhXZRLAmFlSwOMB2ludCBrZXmUdYwGc2hhcmVklF2UKF2USwdhaChljAJvZJSMC2NvbGxlY3Rpb25zlIwLT3JkZXJlZERpY3SUk5QpUpQojAFilEsBaB1LAnV1Lg==',
  5: 'gAWV/gMAAAAAAAB9lCiMBGludHOUXZQoSwBLAUr/////S/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAigcAAAAAAAAgiggAAAAAAAAAgIoJAAAAAAAAAABAZYwGZmxvYXRzlF2UKEc/4AAAAAAAAEf+N+Q8iAB1nEc+5Pi1iONo8Ud/8AAAAAAAAGWMA3N0cpRdlCiMAJSMBWFzY2lplIwRw7xuw6/CqcO4ZMOpIPCfmICUWCwBAAB4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHiUjAlxdW90ZSciXAqUZYwFYnl0ZXOUXZQoQwCUQwMA/wqUQiwBAAB5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXmUZYwEbm9uZZROjAVib29sc5SIiYaUjAZ0dXBsZXOUXZQoKUsBhZRLAUsChpRLAUsCSwOHlChLAUsCSwNLBHSUZYwDc2V0lI+UKEsBSwKQjAJmc5QojAFhlJGUjAZuZXN0ZWSUfZQojAFrlF2UKF2USwFhXZRLAmFlSwOMB2ludCBrZXmUdYwGc2hhcmVklF2UKF2USwdhaChljAJvZJSMC2NvbGxlY3Rpb25zlIwLT3JkZXJlZERpY3SUk5QpUpQojAFilEsBaB1LAnV1Lg==',
};

const EXPECTED = {
  dict: [
    ['ints', [0, 1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, '9007199254740992n', '-9223372036854775808n', '1180591620717411303424n']],
    // A whole float stays a float (written back, it must not become an int).
    ['floats', [0.5, { float: -1e300 }, 1e-5, Infinity]],
    ['str', ['', 'ascii', 'ünï©ødé 😀', 'x'.repeat(300), 'quote\'"\\\n']],
    ['bytes', [{ bytes: [] }, { bytes: [0, 255, 10] }, { bytes: new Array(300).fill(121) }]],
    ['none', null],
    ['bools', { tuple: [true, false] }],
    ['tuples', [{ tuple: [] }, { tuple: [1] }, { tuple: [1, 2] }, { tuple: [1, 2, 3] }, { tuple: [1, 2, 3, 4] }]],
    ['set', { set: [1, 2] }],
    ['fs', { frozenset: ['a'] }],
    [
      'nested',
      {
        dict: [
          ['k', [[1], [2]]],
          [3, 'int key'],
        ],
      },
    ],
    ['shared', [[7], [7]]],
    [
      'od',
      {
        'collections.OrderedDict': [
          ['b', 1],
          ['a', 2],
        ],
      },
    ],
  ],
};

describe('unpickle: what CPython writes', () => {
  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    it(`reads protocol ${protocol}`, () => {
      const bytes = new Uint8Array(Buffer.from(PYTHON_PICKLES[protocol], 'base64'));
      const r = load(bytes);
      expect(r.end).toBe(bytes.length);
      expect(norm(r.value)).toEqual(EXPECTED);
      // The memo keeps shared references shared.
      const shared = (r.value as PyDict).get('shared') as PyValue[];
      expect(shared[0]).toBe(shared[1]);
      expect(r.placeholderGlobals).toEqual([]);
    });
  }
});

describe('unpickle: opcodes by hand', () => {
  it('decodes protocol 0 STRING escapes and UNICODE raw escapes', () => {
    expect(value(pk("S'a\\x41\\n\\101\\'b\\\\'\n."))).toBe("aA\nA'b\\");
    expect(value(pk('S"double"\n.'))).toBe('double');
    expect(value(pk('Vh\\u00e9\\U0001f600 \\x\n.'))).toBe('hé😀 \\x');
    expectError(() => value(pk("S'unterminated\n.")), /STRING operand is not quoted/);
    expectError(() => value(pk("S'\\q'\n.")), /bad escape \\q in STRING/);
  });

  it('reads Python 2 binary strings as latin-1 text', () => {
    expect(value(pk(0x55, 3, 'a', 0xe9, 'b', '.'))).toBe('aéb');
    expect(value(pk(0x54, ...u32(2), 0xff, 0x00, '.'))).toBe('\u00ff\u0000');
    expectError(() => value(pk(0x54, 0xff, 0xff, 0xff, 0xff, '.')), /negative BINSTRING length/);
  });

  it('reads protocol 0 integers, booleans, longs and floats', () => {
    expect(value(pk('I01\n.'))).toBe(true);
    expect(value(pk('I00\n.'))).toBe(false);
    expect(value(pk('I-42\n.'))).toBe(-42);
    expect(value(pk('I123456789012345678901\n.'))).toBe(123456789012345678901n);
    expect(value(pk('L-5L\n.'))).toBe(-5);
    expect(value(pk('F-2.5e-3\n.'))).toBe(-0.0025);
    expect(value(pk('F-inf\n.'))).toBe(-Infinity);
    expect(value(pk('Fnan\n.'))).toBeNaN();
    expectError(() => value(pk('F0x10\n.')), /bad float literal '0x10'/);
    expectError(() => value(pk('I12a\n.')), /bad integer literal '12a'/);
    expectError(() => value(pk('I', '9'.repeat(9000), '\n.')), /bad integer literal/);
  });

  it("reads binary integers and LONG1/LONG4 two's complement", () => {
    expect(value(pk(0x4a, 0xfe, 0xff, 0xff, 0xff, '.'))).toBe(-2);
    expect(value(pk(0x8a, 0, '.'))).toBe(0);
    expect(value(pk(0x8a, 1, 0xff, '.'))).toBe(-1);
    expect(value(pk(0x8a, 2, 0x00, 0x80, '.'))).toBe(-32768);
    expect(value(pk(0x8a, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, '.'))).toBe(-(2n ** 71n) + 1n);
    expect(value(pk(0x8b, ...u32(8), ...u64(2n ** 62n), '.'))).toBe(2n ** 62n);
    expect(value(pk(0x8b, ...u32(8), ...u64(12345n), '.'))).toBe(12345);
    expectError(() => value(pk(0x8b, ...u32(0x7fffffff), '.')), /integer of 2147483647 bytes is too large/);
    expectError(() => value(pk(0x8b, ...u32(0xffffffff), '.')), /negative LONG4 length/);
  });

  it('reads bytes, bytearray and 8-byte-length strings', () => {
    expect(value(pk(0x43, 2, 1, 2, '.'))).toEqual(Uint8Array.of(1, 2));
    expect(value(pk(0x42, ...u32(1), 9, '.'))).toEqual(Uint8Array.of(9));
    expect(value(pk(0x8e, ...u64(3n), 'abc', '.'))).toEqual(new TextEncoder().encode('abc'));
    expect(value(pk(0x80, 5, 0x96, ...u64(2n), 7, 8, '.'))).toEqual(Uint8Array.of(7, 8));
    expect(value(pk(0x8d, ...u64(2n), 'hi', '.'))).toBe('hi');
    expect(value(pk(0x8c, 2, 'ok', '.'))).toBe('ok');
  });

  it('handles MARK, POP, POP_MARK and DUP like CPython', () => {
    // POP with nothing above the MARK discards the MARK itself.
    expect(norm(value(pk('(I1\nI2\n(0t.')))).toEqual({ tuple: [1, 2] });
    expect(norm(value(pk('I1\n(I2\nI3\n1.')))).toBe(1);
    const dup = value(pk(']2\x86.')) as PyValue[];
    expect(dup[0]).toBe(dup[1]);
    expectError(() => value(pk('0.')), /stack underflow/);
    expectError(() => value(pk('(.')), /stack underflow/);
    expectError(() => value(pk('1.')), /no MARK to pop to/);
  });

  it('builds sets, frozensets, dicts and lists from MARKed items', () => {
    expect(norm(value(pk(0x8f, '(K', 1, 'K', 2, 0x90, '.')))).toEqual({ set: [1, 2] });
    expect(norm(value(pk('(K', 1, 0x91, '.')))).toEqual({ frozenset: [1] });
    expect(norm(value(pk('(Vk\nI1\nd.')))).toEqual({ dict: [['k', 1]] });
    expect(norm(value(pk('(I1\nl.')))).toEqual([1]);
    expectError(() => value(pk('(K', 1, 0x91, '(K', 2, 0x90, '.')), /cannot add items to frozenset/);
    expectError(() => value(pk(')K', 1, 'a.')), /cannot append to tuple/);
    expectError(() => value(pk('}(K', 1, 'u.')), /SETITEMS with an odd number of items/);
    expectError(() => value(pk('K', 1, 'K', 2, 'K', 3, 's.')), /cannot set items on int/);
  });

  it('memoizes with PUT/GET, BINPUT/BINGET, LONG_BINPUT/LONG_BINGET and MEMOIZE', () => {
    const r = value(pk(']p7\n', 'r', ...u32(70000), 0x94, '0g7\n', 'j', ...u32(70000), 'h', 2, 0x87, '.')) as PyValue[];
    expect(r[0]).toBe(r[1]);
    expect(r[1]).toBe(r[2]);
    expectError(() => value(pk('h', 3, '.')), /memo key 3 was never stored/);
    expectError(() => value(pk('N', 'p-1\n.')), /bad memo key '-1'/);
  });

  it('turns unknown classes into inert placeholders: REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ', () => {
    const reduce = load(pk('cmodels.yolo\nModel\n(K', 1, 'tR.'));
    expect(norm(reduce.value)).toEqual({ object: 'models.yolo.Model', args: [1], state: undefined });
    expect(reduce.placeholderGlobals).toEqual(['models.yolo.Model']);
    const newobj = value(pk(0x80, 2, 'cm\nC\n)', 0x81, '.'));
    expect(newobj).toBeInstanceOf(PyObject);
    const ex = value(pk(0x80, 4, 0x8c, 1, 'm', 0x8c, 1, 'C', 0x93, 'K', 5, 0x85, '}', 0x8c, 1, 'k', 'K', 6, 's', 0x92, '.')) as PyObject;
    expect(ex.className).toBe('m.C');
    expect(norm(ex.kwargs!)).toEqual({ dict: [['k', 6]] });
    expect(norm(value(pk('(K', 1, 'im\nC\n.')))).toEqual({ object: 'm.C', args: [1], state: undefined });
    expect(norm(value(pk('(cm\nC\nK', 2, 'o.')))).toEqual({ object: 'm.C', args: [2], state: undefined });
    expectError(() => value(pk('K', 1, ')R.')), /cannot call int/);
    expectError(() => value(pk('cm\nf\nK', 1, 'R.')), /REDUCE arguments must be a tuple, got int/);
    expectError(() => value(pk('o.')), /no MARK to pop to/);
    expectError(() => value(pk('(o.')), /OBJ without a class/);
  });

  it('records BUILD state, dict and list items on placeholders without calling anything', () => {
    const obj = value(pk('cm\nC\n)R}(Vin_channels\nK', 3, 'Vstride\nK', 1, 'K', 1, 0x86, 'ub.')) as PyObject;
    expect(Object.fromEntries(obj.attributes())).toEqual({ in_channels: 3, stride: [1, 1] });
    // (state, slotstate) as pickled for classes with __slots__
    const slots = value(pk('cm\nC\n)R(}Va\nK', 1, 's}Vb\nK', 2, 'stb.')) as PyObject;
    expect(Object.fromEntries(slots.attributes())).toEqual({ a: 1, b: 2 });
    const dictLike = value(pk('cm\nD\n)R(Vk\nK', 1, 'u]K', 2, 'a.')) as PyValue[];
    expect(dictLike).toEqual([2]);
    const both = value(pk('cm\nD\n)R(Vk\nK', 1, 'uK', 2, 'a.')) as PyObject;
    expect([...both.dictItems!]).toEqual([['k', 1]]);
    expect(both.listItems).toEqual([2]);
    const od = value(pk('ccollections\nOrderedDict\n)R}V_metadata\nK', 1, 'sb.')) as PyDict;
    expect(od.className).toBe('collections.OrderedDict');
    expect(od.attrs?.get('_metadata')).toBe(1);
    expectError(() => value(pk('K', 1, 'Nb.')), /BUILD on int/);
  });

  it('implements the allow-listed constructors without Python', () => {
    expect(value(pk('c_codecs\nencode\n(V\u00ff\nVlatin1\ntR.'))).toEqual(Uint8Array.of(0xff));
    expect(norm(value(pk('c_codecs\nencode\n(V\\u0100\nVlatin1\ntR.')))).toEqual({ object: '_codecs.encode', args: ['\u0100', 'latin1'], state: undefined });
    expect(value(pk('c_codecs\nencode\n(Vx\nVrot13\ntR.'))).toBeInstanceOf(PyObject);
    expect(norm(value(pk('c__builtin__\nset\n((K', 1, 'K', 2, 'ltR.')))).toEqual({ set: [1, 2] });
    expect(norm(value(pk('cbuiltins\nfrozenset\n((K', 3, 'ltR.')))).toEqual({ frozenset: [3] });
    expect(norm(value(pk('ccollections\nOrderedDict\n(((Va\nK', 1, 'tltR.')))).toEqual({ 'collections.OrderedDict': [['a', 1]] });
    expect(value(pk('c__builtin__\nbytes\n)R.'))).toEqual(new Uint8Array(0));
    expect(value(pk('cbuiltins\nbytearray\nC', 1, 'x', 0x85, 'R.'))).toEqual(Uint8Array.of(0x78));
    const rec = value(pk('ccopy_reg\n_reconstructor\n(cm\nC\ncbuiltins\nobject\nNtR.')) as PyObject;
    expect(rec.className).toBe('m.C');
    // The allow-list never reaches these; they stay placeholders.
    const r = load(pk('cbuiltins\nobject\n.'));
    expect(r.placeholderGlobals).toEqual(['builtins.object']);
  });

  it('passes persistent ids to the caller and refuses them without a handler', () => {
    const seen: PyValue[] = [];
    const persistentLoad = (pid: PyValue) => {
      seen.push(pid);
      return 'loaded';
    };
    expect(value(pk('Pabc\n.'), { persistentLoad })).toBe('loaded');
    expect(value(pk('(Vstorage\nK', 1, 'tQ.'), { persistentLoad })).toBe('loaded');
    expect(norm(seen as PyValue)).toEqual(['abc', { tuple: ['storage', 1] }]);
    expectError(() => value(pk('Pabc\n.')), /persistent id found/);
  });

  it('refuses extension codes, out-of-band buffers, unknown opcodes and future protocols', () => {
    for (const op of [0x82, 0x83, 0x84]) expectError(() => value(pk(op, 1, 0, 0, 0, '.')), /extension registry codes/);
    for (const op of [0x97, 0x98]) expectError(() => value(pk(0x80, 5, op, '.')), /out-of-band buffers/);
    expect(expectError(() => value(pk(0x80, 2, 'N', 0xff, '.')), /./).message).toBe('test.pkl: unsupported pickle opcode 0xff at offset 3');
    expectError(() => value(pk(0x80, 6, 'N.')), /unsupported pickle protocol 6/);
  });
});

describe('unpickle: limits and damaged input', () => {
  it('reports a missing STOP as truncation', () => {
    const e = expectError(() => value(pk(0x80, 2, ']K', 1)), /pickle truncated/);
    expect(e).toBeInstanceOf(PickleEndOfInput);
  });

  it('never allocates for lengths the input cannot back', () => {
    const before = process.memoryUsage().arrayBuffers;
    expectError(() => value(pk(0x58, ...u32(0xfffffff0), 'ab')), /needs 4294967280 bytes, 2 left/);
    expectError(() => value(pk(0x8e, ...u64(2n ** 60n), 'ab')), /pickle truncated/);
    expectError(() => value(pk(0x95, ...u64(2n ** 40n), 'N.')), /pickle truncated/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });

  it('bounds MARK nesting, stack, memo and object count', () => {
    expectError(() => value(pk('('.repeat(20_000))), /more than 10000 nested MARKs/);
    expectError(() => value(pk('N'.repeat(100), '.'), { limits: { maxStack: 50 } }), /stack deeper than 50/);
    expectError(() => value(pk(']'.repeat(100), '.'), { limits: { maxObjects: 50 } }), /more than 50 objects/);
    const puts = Array.from({ length: 20 }, (_, i) => ['q', i]).flat();
    expectError(() => value(pk('N', ...puts, '.'), { limits: { maxMemo: 10 } }), /memo larger than 10/);
  });

  it('reads self-referencing structures, and summarize stays finite on them', () => {
    const list = value(pk(']q', 0, 'h', 0, 'a.')) as PyValue[];
    expect(list[0]).toBe(list);
    expect(JSON.stringify(summarize(list))).toContain('[…] (1 items)');
  });

  it('gives a ModelFormatError quickly for truncations and flipped bytes of a real data.pkl', async () => {
    const src = new MemoryByteSource('test.pkl', new Uint8Array(readFileSync(join(FIXTURES, 'models/repvgg_full_module.pt'))));
    const zip = await ZipArchive.open(src);
    const pickle = await zip.read(zip.entry('repvgg_full_module/data.pkl')!);
    const opts = { persistentLoad: (pid: PyValue) => pid };
    expect(load(pickle, opts).end).toBe(pickle.length);
    const started = Date.now();
    for (let len = 0; len < pickle.length; len += 13) expectError(() => load(pickle.subarray(0, len), opts), /./);
    let errors = 0;
    for (let i = 0; i < pickle.length; i += 5) {
      const bad = pickle.slice();
      bad[i] ^= 0xff;
      try {
        load(bad, opts);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(pickle.length / 5 / 2);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);
});

describe('unpickle: hostile pickles', () => {
  const files = readdirSync(join(FIXTURES, 'hostile')).filter((f) => f.endsWith('.pkl'));

  it('has the hostile fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });

  for (const f of files) {
    it(`${f}: runs nothing, yields placeholders or a ModelFormatError`, () => {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'hostile', f)));
      let result: UnpickleResult | undefined;
      try {
        result = unpickle(bytes, 0, { file: 'test.pkl' });
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
      }
      expect(existsSync(MARKER)).toBe(false);
      if (result) {
        expect(result.placeholderGlobals.some((g) => /^(os|posix|subprocess|builtins)\./.test(g))).toBe(true);
        expect(result.value).not.toBeTypeOf('number');
      }
    });
  }

  it('reduce_os_system.pkl becomes a placeholder that records the command', () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'hostile/reduce_os_system.pkl')));
    const r = unpickle(bytes, 0, { file: 'test.pkl' });
    expect(norm(r.value)).toEqual({ object: 'os.system', args: ['touch /tmp/replens-pwned-marker'], state: undefined });
  });
});
