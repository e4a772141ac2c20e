import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultOutputPath } from '../../../src/core/convert/convert';
import { MODEL_SUFFIXES, splitModelName } from '../../../src/core/formats/modelFileNames';

/** package.json cannot import code: the model file names it lists by hand must be RepLens' own list. */
const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));

describe('the model file names', () => {
  it('the model editor opens exactly the files RepLens reads as models', () => {
    const patterns: string[] = manifest.contributes.customEditors[0].selector.map((s: { filenamePattern: string }) => s.filenamePattern);
    expect(new Set(patterns)).toEqual(new Set(MODEL_SUFFIXES.map((s) => `*${s}`)));
  });

  it('every Explorer menu item is offered on exactly those files', () => {
    const conditions: string[] = manifest.contributes.menus['explorer/context'].map((m: { when: string }) => m.when);
    expect(conditions.length).toBeGreaterThan(0);
    for (const when of conditions) {
      const pattern = new RegExp(/resourceFilename =~ \/(.*)\/i/.exec(when)![1].replace(/\\\\/g, '\\'), 'i');
      for (const s of MODEL_SUFFIXES) expect(pattern.test(`model${s}`), `${when} on model${s}`).toBe(true);
      for (const other of ['model.tar', 'model.json', 'model.pth.bak', 'model.bin']) expect(pattern.test(other), `${when} on ${other}`).toBe(false);
    }
  });

  it('splits a name at its model suffix, .pth.tar whole', () => {
    expect(splitModelName('/a/b/resnet.pth.tar')).toEqual({ stem: 'resnet', suffix: '.pth.tar' });
    expect(splitModelName('x.y.ONNX')).toEqual({ stem: 'x.y', suffix: '.onnx' });
    expect(splitModelName('pytorch_model.bin')).toEqual({ stem: 'pytorch_model', suffix: '.bin' });
    expect(splitModelName('weights')).toEqual({ stem: 'weights', suffix: '' });
    expect(defaultOutputPath('/m/resnet.pth.tar', 'pth')).toBe(path.join('/m', 'resnet.deploy.pth.tar'));
    expect(defaultOutputPath('/m/model.safetensors', 'pth')).toBe(path.join('/m', 'model.deploy.pth'));
  });
});
