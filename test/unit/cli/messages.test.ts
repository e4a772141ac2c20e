import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliUnderTest } from '../parity/bundle';

/*
 * The words of the errors users meet most, exactly as the CLI prints them: each produced by the real
 * CLI on a real bad input. The reason comes right after the file's base name (a terminal line, a CI
 * log or a toast cut short keeps it); the path as given follows on a line of its own when it says more.
 * A change to any of these lines is a change users see: make it here on purpose.
 */

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures');
const MODELS = path.join(FIXTURES, 'models');
const LAST = path.join(FIXTURES, 'peers', 'yolov7', 'tiny_repconv_last.pt');

const cli = cliUnderTest('replens-messages-');

const replens = (args: string[], cwd?: string) => cli.run(args, cwd);

/** A copy of the first `fraction` of a fixture: a download or copy that stopped part way. */
async function cut(name: string, fraction: number, as = name): Promise<string> {
  const bytes = await readFile(path.join(MODELS, name));
  const file = path.join(cli.dir, as);
  await writeFile(file, bytes.subarray(0, Math.floor(bytes.length * fraction)));
  return file;
}

const TRUNCATED_PTH =
  'the file is truncated: it ends at 93.7 KiB, inside a zip that began as a PyTorch checkpoint (no end-of-central-directory record); re-save or re-download it';

describe('the messages users see most, word for word', () => {
  it('a .pth cut at 60 %: truncated, with where it ends, before any zip detail; every command says the same', async () => {
    const file = await cut('repvgg_tiny_train.pth', 0.6, 'truncated_train.pth');
    for (const command of ['inspect', 'tensors', 'convert']) {
      const { code, stdout, stderr } = await replens([command, file]);
      expect({ command, code, stdout, stderr }).toEqual({
        command,
        code: 1,
        stdout: '',
        stderr: `replens: truncated_train.pth: ${TRUNCATED_PTH}\n  file: ${file}\n`,
      });
    }
    // Given by its base name (run in its folder), the path line would say nothing more: there is none.
    expect((await replens(['inspect', 'truncated_train.pth'], cli.dir)).stderr).toBe(`replens: truncated_train.pth: ${TRUNCATED_PTH}\n`);
  });

  it('the other formats cut short say the same first words, and where they stopped', async () => {
    const cases: [string, number, string][] = [
      [
        'repvgg_tiny_train_legacy.pth',
        0.6,
        "the file is truncated: it ends at 83.8 KiB, inside the storages of a legacy PyTorch checkpoint (storage '70' needs bytes up to 94236); re-save or re-download it",
      ],
      [
        'repvgg_tiny_train.safetensors',
        0.6,
        "the file is truncated: it ends at 80.2 KiB, inside the tensor data of a safetensors file (tensor 'stage3.1.rbr_dense.conv.weight' needs data bytes up to 79648, the file has 73332); re-save or re-download it",
      ],
      [
        'repvgg_tiny_train.safetensors',
        0.02,
        'the file is truncated: it ends at 2.7 KiB, inside the header of a safetensors file (header claims 8816 bytes, the file has 2730 after the length); re-save or re-download it',
      ],
      [
        'repvgg_tiny_train.onnx',
        0.6,
        'the file is truncated: it ends at 85.7 KiB, inside an ONNX model (its graph (field 7) runs from byte 19 to byte 146324); re-save or re-download it',
      ],
    ];
    for (const [name, fraction, reason] of cases) {
      const file = await cut(name, fraction);
      expect(await replens(['inspect', file])).toEqual({ code: 1, stdout: '', stderr: `replens: ${name}: ${reason}\n  file: ${file}\n` });
    }
  });

  it('a text file named .pth', async () => {
    const file = path.join(cli.dir, 'site_paths.pth');
    await writeFile(file, '/opt/project/src\nimport sys; sys.path.insert(0, "/opt/extra")\n');
    expect(await replens(['inspect', file])).toEqual({
      code: 1,
      stdout: '',
      stderr: `replens: site_paths.pth: this is a text file, not a model (a .pth file can also be a Python path configuration file)\n  file: ${file}\n`,
    });
  });

  it('bytes that are no model, an empty file, a folder, a missing file', async () => {
    const empty = path.join(cli.dir, 'empty.pth');
    await writeFile(empty, '');
    const folder = path.join(cli.dir, 'checkpoints.pth');
    await mkdir(folder);
    const missing = path.join(cli.dir, 'missing.pth');
    const cases: [string, string][] = [
      [path.join(MODELS, 'not_a_model.pth'), 'not_a_model.pth: not a model file: the first bytes match no PyTorch, ONNX or safetensors layout'],
      [empty, 'empty.pth: the file is empty (0 bytes); re-save or re-download it'],
      [folder, 'checkpoints.pth: this is a folder, not a model file'],
      [missing, 'missing.pth: file not found'],
    ];
    for (const [file, line] of cases) {
      expect(await replens(['inspect', file])).toEqual({ code: 1, stdout: '', stderr: `replens: ${line}\n  file: ${file}\n` });
    }
  });

  it('an output that exists, without --force', async () => {
    const input = path.join(cli.dir, 'repvgg_tiny_train.pth');
    await copyFile(path.join(MODELS, 'repvgg_tiny_train.pth'), input);
    const output = path.join(cli.dir, 'repvgg_tiny_train.deploy.pth');
    await writeFile(output, 'an earlier deploy file');
    expect(await replens(['convert', input])).toEqual({
      code: 1,
      stdout: '',
      stderr: `replens: repvgg_tiny_train.deploy.pth: already exists (use --force to replace it)\n  file: ${output}\n`,
    });
    expect(await readFile(output, 'utf8')).toBe('an earlier deploy file');
  });

  it('a --weights key the checkpoint does not have: names the keys it has', async () => {
    expect(await replens(['inspect', LAST, '--weights', 'EMA'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `replens: tiny_repconv_last.pt: has no weights under 'EMA': its weights are under 'model', 'ema'\n  file: ${LAST}\n`,
    });
  });

  it('a model without re-parameterizable blocks, and one already in deploy form', async () => {
    const dtypes = path.join(MODELS, 'dtypes.pth');
    const deploy = path.join(MODELS, 'repvgg_tiny_deploy.pth');
    expect(await replens(['convert', dtypes, '-o', path.join(cli.dir, 'out.pth')])).toEqual({
      code: 1,
      stdout: '',
      stderr: `replens: dtypes.pth: no re-parameterizable blocks found\n  file: ${dtypes}\n`,
    });
    expect(await replens(['convert', deploy, '-o', path.join(cli.dir, 'out.pth')])).toEqual({
      code: 1,
      stdout: '',
      stderr: `replens: repvgg_tiny_deploy.pth: every block is already in deploy form\n  file: ${deploy}\n`,
    });
  });

  it('usage mistakes point to the help of the command they were made in', async () => {
    expect(await replens(['convert', 'a.pth', '--bogus'])).toEqual({
      code: 2,
      stdout: '',
      stderr: "replens convert: unknown option '--bogus'. Run 'replens convert --help'.\n",
    });
    expect(await replens(['inspect', 'a.pth', 'b.pth'])).toEqual({
      code: 2,
      stdout: '',
      stderr: "replens inspect: 'replens inspect' takes exactly one FILE. Run 'replens inspect --help'.\n",
    });
    expect(await replens(['convert', 'a.pth', '--format', 'tflite'])).toEqual({
      code: 2,
      stdout: '',
      stderr: "replens convert: --format must be one of pth, safetensors, onnx. Run 'replens convert --help'.\n",
    });
    expect(await replens(['frobnicate'])).toEqual({ code: 2, stdout: '', stderr: "replens: unknown command 'frobnicate'. Run 'replens --help'.\n" });
  });
});
