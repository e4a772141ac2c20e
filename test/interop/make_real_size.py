#!/usr/bin/python3
"""Writes real-size train checkpoints for the differential test (realSize.interop.test.ts).

usage: make_real_size.py OUT_DIR MODEL:DTYPE[:FORM]...
MODEL names an entry of replens_fixture_models.REAL_SIZE, DTYPE a floating-point torch dtype. Writes
OUT_DIR/<model>_<dtype>.pth, torch.save of a state dict with seeded random weights and BN statistics (so
every branch changes the fused result), and prints the list of {"model", "dtype", "form", "train"} as JSON.
FORM 'module' writes <model>_<dtype>_module.pt instead, a YOLO-style checkpoint whose 'model' is the pickled
model; 'onnx' writes <model>_<dtype>.onnx, torch.onnx.export of the model in eval mode (1x3x64x64 input);
'outliers' writes <model>_<dtype>_outliers.pth, the state dict with a few channels dominating, as in trained
models: in every block two output channels (seeded) of the 3x3 branch's BN get 20x its scale, so they stand
out in the fused kernel and in the activations that follow.
Every dtype of a model holds the same weights: its float32 ones, rounded; num_batches_tracked stays int64.
"""

import collections
import copy
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
import make_fixtures  # noqa: E402  (for build: a seeded model through randomize_)
import replens_fixture_models as rfm  # noqa: E402


def in_dtype(state_dict, dtype):
    return collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items())


def write(model, built, dtype, form, out_dir):
    if form == 'module':
        path = os.path.join(out_dir, f'{model}_{dtype}_module.pt')
        torch.save({'model': copy.deepcopy(built).to(getattr(torch, dtype)), 'ema': None, 'epoch': -1}, path)
    elif form == 'onnx':
        path = os.path.join(out_dir, f'{model}_{dtype}.onnx')
        torch.onnx.export(copy.deepcopy(built).to(getattr(torch, dtype)).eval(), torch.zeros(1, 3, 64, 64), path,
                          input_names=['input'], output_names=['output'], opset_version=13)
    elif form == 'outliers':
        path = os.path.join(out_dir, f'{model}_{dtype}_outliers.pth')
        dominated = copy.deepcopy(built)
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for name, module in dominated.named_modules():
                if name.endswith('rbr_dense.bn') and isinstance(module, torch.nn.BatchNorm2d):
                    channels = torch.randperm(module.num_features, generator=generator)[:2]
                    module.weight[channels] *= 20
        torch.save(in_dtype(dominated.state_dict(), getattr(torch, dtype)), path)
    else:
        path = os.path.join(out_dir, f'{model}_{dtype}.pth')
        torch.save(in_dtype(built.state_dict(), getattr(torch, dtype)), path)
    return path


def main(out_dir, wanted):
    specs = collections.defaultdict(list)
    for spec in wanted:
        model, dtype, form = (spec.split(':') + ['state_dict'])[:3]
        specs[model].append((dtype, form))
    written = []
    for model, model_specs in specs.items():
        ctor, seed = rfm.REAL_SIZE[model]
        built = make_fixtures.build(ctor, seed)
        for dtype, form in model_specs:
            written.append({'model': model, 'dtype': dtype, 'form': form, 'train': write(model, built, dtype, form, out_dir)})
    print(json.dumps(written, indent=1))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
