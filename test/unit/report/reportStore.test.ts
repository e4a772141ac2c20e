import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stampOf } from '../../../src/core/formats/fileStamp';
import type { ReportData } from '../../../src/shared/reportData';
import { ReportStore, ReportStoreError } from '../../../src/core/report/reportStore';
import { smallSample } from '../webview/sampleReport';

let root: string;
let folder: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'replens-store-'));
  // Not there yet: the extension's storage folder is created on first use.
  folder = path.join(root, 'reports');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const storeError = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ReportStoreError);
  return e as ReportStoreError;
};

describe('ReportStore', () => {
  it('writes a report as one JSON file and reads it back, NaN and Infinity included', async () => {
    const store = new ReportStore(folder);
    const report: ReportData = smallSample();
    report.blocks[1].parity = { maxAbs: NaN, maxRel: NaN, cosine: NaN, pass: false };
    report.blocks[2].kernelStats!.outlierRatio = Infinity;
    const id = await store.save(report);
    expect((await readdir(folder)).sort()).toEqual([`${id}.about.json`, `${id}.report.json`]);
    expect(JSON.parse(await readFile(store.fileOf(id), 'utf8')).input).toBe(report.input);
    const back = await store.load(id);
    expect(back).toEqual(report);
    expect(back.load).toEqual(report.load);
    expect(back.load?.code.length).toBeGreaterThan(0);
    expect(back.blocks[1].parity!.maxAbs).toBeNaN();
    expect(back.blocks[2].kernelStats!.outlierRatio).toBe(Infinity);
  });

  it('keeps the newest reports and those still shown, and nothing else of its own', async () => {
    const store = new ReportStore(folder, 3);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await store.save(smallSample()));
    await writeFile(path.join(folder, 'notes.txt'), 'not a report');
    const files = async () => (await readdir(folder)).sort();
    const named = (...n: number[]) => ['notes.txt', ...n.flatMap((i) => [`${ids[i]}.report.json`, `${ids[i]}.about.json`])].sort();
    // The oldest is still on screen somewhere.
    ids.push(await store.save(smallSample(), [ids[0]]));
    expect(await files()).toEqual(named(0, 1, 2, 3));
    ids.push(await store.save(smallSample()));
    expect(await files()).toEqual(named(2, 3, 4));
    await expect(store.load(ids[4])).resolves.toMatchObject({ input: smallSample().input });
    expect((await storeError(store.load(ids[1]))).code).toBe('missing');
  });

  it('a missing report is a clear error naming its file', async () => {
    const store = new ReportStore(folder, 5);
    const id = await store.save(smallSample());
    await rm(store.fileOf(id));
    const e = await storeError(store.load(id));
    expect(e.code).toBe('missing');
    expect(e.message).toBe(`${store.fileOf(id)}: the stored report is gone (RepLens keeps the latest 5)`);
  });

  it('a corrupt or incomplete file is a clear error naming it', async () => {
    const store = new ReportStore(folder);
    const id = await store.save(smallSample());
    const file = store.fileOf(id);
    await writeFile(file, '{"input": "/a.pth", "blocks": [');
    let e = await storeError(store.load(id));
    expect(e.code).toBe('corrupt');
    expect(e.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the stored report is not valid JSON`));
    const { after: _after, ...noAfter } = smallSample();
    await writeFile(file, JSON.stringify(noAfter));
    e = await storeError(store.load(id));
    expect(e).toMatchObject({ code: 'corrupt', message: `${file}: the stored report lacks fields the report view needs` });
    // The view draws a load note's code lines, so a broken one is refused too.
    await writeFile(file, JSON.stringify({ ...smallSample(), load: { ...smallSample().load, code: 'import torch' } }));
    expect((await storeError(store.load(id))).code).toBe('corrupt');
  });

  it('reads only files it named: an id from a webview cannot point elsewhere', async () => {
    const store = new ReportStore(folder);
    await writeFile(path.join(root, 'secret.report.json'), JSON.stringify(smallSample()));
    for (const id of ['../secret', '..', 'mf0abc12-0123abcd/../../secret', '', 'MF0ABC12-0123ABCD']) {
      expect((await storeError(store.load(id))).code).toBe('bad-id');
    }
  });

  describe('latestCurrent: the newest report about a file that is still as the report found it', () => {
    let train: string;
    let deploy: string;
    /** A report about the files as they are now. */
    const reportOn = async (input: string, output: string | null): Promise<ReportData> => ({
      ...smallSample(),
      input,
      output,
      stamps: { input: await stampOf(input), output: output === null ? null : await stampOf(output) },
    });
    /** Rewrites a file with other bytes and a later modification time. */
    const change = async (file: string, text: string) => {
      await writeFile(file, text);
      const later = new Date(Date.now() + 5_000);
      await utimes(file, later, later);
    };

    beforeEach(async () => {
      train = path.join(root, 'model_train.pth');
      deploy = path.join(root, 'model_train.deploy.pth');
      await writeFile(train, 'train weights');
      await writeFile(deploy, 'deploy weights');
    });

    it('finds a report by its input or its deploy file, the newest first', async () => {
      const store = new ReportStore(folder);
      await store.save(await reportOn(train, null));
      const converted = await store.save(await reportOn(train, deploy));
      await store.save(await reportOn(path.join(root, 'other.pth'), null));
      expect(await store.latestCurrent(train)).toEqual({
        id: converted,
        input: train,
        output: deploy,
        stamps: { input: await stampOf(train), output: await stampOf(deploy) },
      });
      expect((await store.latestCurrent(deploy))?.id).toBe(converted);
      expect(await store.latestCurrent(path.join(root, 'never-checked.pth'))).toBeUndefined();
    });

    it('skips a report whose deploy file changed or is gone, for an older one still current', async () => {
      const store = new ReportStore(folder);
      const inMemory = await store.save(await reportOn(train, null));
      await store.save(await reportOn(train, deploy));
      await change(deploy, 'deploy weights, converted again');
      expect((await store.latestCurrent(train))?.id).toBe(inMemory);
      expect(await store.latestCurrent(deploy)).toBeUndefined();
      const again = await store.save(await reportOn(train, deploy));
      expect((await store.latestCurrent(deploy))?.id).toBe(again);
      await rm(deploy);
      expect((await store.latestCurrent(train))?.id).toBe(inMemory);
    });

    it('finds nothing once the input changed, however many reports there were', async () => {
      const store = new ReportStore(folder);
      await store.save(await reportOn(train, null));
      await store.save(await reportOn(train, deploy));
      await change(train, 'train weights after more training');
      expect(await store.latestCurrent(train)).toBeUndefined();
      expect(await store.latestCurrent(deploy)).toBeUndefined();
    });

    it('a report without stamps (from before they were kept) or with a broken about-file is never current', async () => {
      const store = new ReportStore(folder);
      await store.save({ ...(await reportOn(train, null)), stamps: { input: null, output: null } });
      expect(await store.latestCurrent(train)).toBeUndefined();
      const broken = await store.save(await reportOn(train, null));
      await writeFile(store.fileOf(broken).replace('.report.json', '.about.json'), '{"id": "');
      expect(await store.latestCurrent(train)).toBeUndefined();
    });

    it('pruning deletes a report with its about-file, and about-files left without a report', async () => {
      const store = new ReportStore(folder, 1);
      await store.save(await reportOn(train, null));
      const second = await store.save(await reportOn(train, deploy));
      expect((await readdir(folder)).sort()).toEqual([`${second}.about.json`, `${second}.report.json`]);
      await rm(store.fileOf(second));
      await store.prune();
      expect(await readdir(folder)).toEqual([]);
    });
  });
});
