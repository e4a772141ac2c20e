#!/usr/bin/python3
"""PyTorch side of `npm run bench`: makes the benchmark checkpoints and runs the torch baselines.

Run with Debian's interpreter (python3-torch). Each verb is one child process, so that
scripts/bench.mjs can time it and read its peak RSS:

    make ARCH OUT           seeded train-form checkpoint of a published RepVGG size (A0, B3)
    load IN                 torch.load only: the baseline for `replens tensors`
    convert ARCH IN OUT     the usual conversion script: load, fuse_to_deploy, save the state dict
    verify ARCH OURS TORCH  OURS loads strictly into the deploy model; largest difference from TORCH
    parity ARCH IN          the job of `replens parity IN --inputs 1`: load the train model, run one
                            seeded 224×224 input, convert to deploy, run it again, compare the outputs

The model classes come from test/fixtures, so tensor names match upstream RepVGG.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures'))
import replens_fixture_models as rfm  # noqa: E402

ARCHS = {
    'A0': dict(num_blocks=[2, 4, 14, 1], width_multiplier=[0.75, 0.75, 0.75, 2.5]),
    'B3': dict(num_blocks=[4, 6, 16, 1], width_multiplier=[3, 3, 3, 5]),
}
NUM_CLASSES = 1000
SEED = 20210111  # fixed, so a regenerated checkpoint is the same one


def build(arch, deploy):
    return rfm.RepVGG(**ARCHS[arch], num_classes=NUM_CLASSES, deploy=deploy)


def make(arch, out):
    model = rfm.randomize_(build(arch, deploy=False), torch.Generator().manual_seed(SEED))
    # Written beside the target and renamed, so an interrupted run never leaves a truncated cache entry.
    tmp = out + '.part'
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, out)


def load(path):
    state = torch.load(path)
    print(json.dumps({'tensors': len(state)}))


def convert(arch, inp, out):
    model = build(arch, deploy=False)
    model.load_state_dict(torch.load(inp, map_location='cpu'))
    torch.save(rfm.fuse_to_deploy(model).state_dict(), out)


def verify(arch, ours_path, torch_path):
    ours = torch.load(ours_path, map_location='cpu')
    build(arch, deploy=True).load_state_dict(ours, strict=True)
    reference = torch.load(torch_path, map_location='cpu')
    max_abs = max(float((ours[k].double() - v.double()).abs().max()) for k, v in reference.items())
    print(json.dumps({'strictLoad': True, 'tensors': len(ours), 'maxAbsVsTorch': max_abs}))


def parity(arch, inp):
    model = build(arch, deploy=False)
    model.load_state_dict(torch.load(inp, map_location='cpu'))
    model.eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        train = model(x)
        deploy = rfm.fuse_to_deploy(model)(x)
    max_rel = float(((deploy - train).abs() / train.abs().max()).max())
    print(json.dumps({'maxRelVsPeak': max_rel, 'pass': max_rel < 1e-3}))


if __name__ == '__main__':
    verb, *args = sys.argv[1:]
    {'make': make, 'load': load, 'convert': convert, 'verify': verify, 'parity': parity}[verb](*args)
