#!/usr/bin/python3
"""Runs the fixture models in real PyTorch on given inputs and saves every block's output.

usage: torch_outputs.py MANIFEST.json
  MANIFEST: a list of {"fixture", "train", "topology", "inputs": {name: npy}, "blocks": [names],
  "outDir"}. A 'blockwise' case runs each block module on the input named "<block>:input";
  otherwise the whole model runs on "input" and forward hooks catch the block outputs
  (a 'classifier' case also saves the logits as "output").
Prints one JSON list: per case, {name: npy path} of what was saved, or an error.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
import check_deploy  # noqa: E402  (for its checkpoint loading)
import replens_fixture_models as rfm  # noqa: E402
from manifest_cases import run_cases  # noqa: E402


def run(case):
    ctor, _seed = rfm.FIXTURES[case['fixture']]
    model = ctor().eval()
    model.load_state_dict(check_deploy.train_state_dict(case['train']), strict=True)
    inputs = {name: torch.from_numpy(np.load(path)) for name, path in case['inputs'].items()}
    outputs = {}
    with torch.no_grad():
        if case['topology'] == 'blockwise':
            for name in case['blocks']:
                outputs[name] = model.get_submodule(name)(inputs[f'{name}:input'])
        else:
            hooks = [model.get_submodule(name).register_forward_hook(
                lambda _m, _i, out, name=name: outputs.__setitem__(name, out)) for name in case['blocks']]
            logits = model(inputs['input'])
            for h in hooks:
                h.remove()
            if case['topology'] == 'classifier':
                outputs['output'] = logits
    saved = {}
    for i, (name, value) in enumerate(outputs.items()):
        path = os.path.join(case['outDir'], f'{i}.npy')
        np.save(path, value.float().numpy())
        saved[name] = path
    return saved


if __name__ == '__main__':
    run_cases(lambda case: {'outputs': run(case)})
