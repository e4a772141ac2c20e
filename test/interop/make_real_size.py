#!/usr/bin/python3
"""Writes real-size train checkpoints for the differential test (realSize.interop.test.ts).

usage: make_real_size.py OUT_DIR MODEL:DTYPE...
MODEL names an entry of replens_fixture_models.REAL_SIZE, DTYPE a floating-point torch dtype. Writes
OUT_DIR/<model>_<dtype>.pth, torch.save of a state dict with seeded random weights and BN statistics (so
every branch changes the fused result), and prints the list of {"model", "dtype", "train"} as JSON.
Every dtype of a model holds the same weights: its float32 ones, rounded; num_batches_tracked stays int64.
"""

import collections
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
import make_fixtures  # noqa: E402  (for build: a seeded model through randomize_)
import replens_fixture_models as rfm  # noqa: E402


def in_dtype(state_dict, dtype):
    return collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items())


def main(out_dir, wanted):
    dtypes = collections.defaultdict(list)
    for spec in wanted:
        model, dtype = spec.split(':')
        dtypes[model].append(dtype)
    written = []
    for model, model_dtypes in dtypes.items():
        ctor, seed = rfm.REAL_SIZE[model]
        state_dict = make_fixtures.build(ctor, seed).state_dict()
        for dtype in model_dtypes:
            path = os.path.join(out_dir, f'{model}_{dtype}.pth')
            torch.save(in_dtype(state_dict, getattr(torch, dtype)), path)
            written.append({'model': model, 'dtype': dtype, 'train': path})
    print(json.dumps(written, indent=1))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
