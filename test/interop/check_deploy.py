#!/usr/bin/python3
"""Loads RepLens' deploy files into real PyTorch deploy models and measures them.

usage: check_deploy.py MANIFEST.json   (a list of {"fixture", "train", "deploy"})
Prints one JSON list: per case, whether torch.load(weights_only=True) and
load_state_dict(strict=True) succeeded, and the output / weight errors of RepLens'
fusion next to the same fusion done by PyTorch in float32, both against float64.
A case with "module": true is a deploy checkpoint in the input's whole-module form:
it is loaded as the model it pickles (torch.load, the fixture classes importable),
which must be in deploy form and is run as it is.
"""

import collections
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
import make_fixtures  # noqa: E402  (for its safetensors reader)
import replens_fixture_models as rfm  # noqa: E402
from manifest_cases import run_cases  # noqa: E402


def load_any(path, weights_only):
    if path.endswith('.safetensors'):
        return make_fixtures.read_safetensors(path)[0]
    return torch.load(path, map_location='cpu', weights_only=weights_only) if weights_only else torch.load(path, map_location='cpu')


def stored_state_dict(path):
    """The state dict inside a checkpoint, unwrapped and without 'module.' prefixes, in its stored dtypes."""
    obj = load_any(path, weights_only=False)
    for key in ('state_dict', 'model'):
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    return collections.OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in obj.items())


def train_state_dict(path):
    return collections.OrderedDict((k, v.float() if v.is_floating_point() else v)
                                   for k, v in stored_state_dict(path).items())


def max_abs(a, b):
    if isinstance(a, tuple):
        return max(max_abs(x, y) for x, y in zip(a, b))
    return (a.double() - b.double()).abs().max().item()


def weights_error(deploy_sd, exact_sd):
    return max((deploy_sd[k].double() - exact_sd[k]).abs().max().item()
               for k in exact_sd if k.endswith('.weight') or k.endswith('.bias'))


def check(case):
    ctor, seed = rfm.FIXTURES[case['fixture']]
    result = {'fixture': case['fixture'], 'deploy': os.path.basename(case['deploy'])}
    train = ctor().eval()
    train.load_state_dict(train_state_dict(case['train']), strict=True)
    if case.get('module'):
        loaded = torch.load(case['deploy'], map_location='cpu')
        module = loaded['model'] if isinstance(loaded, dict) else loaded
        replens_sd = {k: v.clone() for k, v in module.state_dict().items()}  # in the stored dtypes, before .float()
        module = module.float().eval()
        result['trainBranchesLeft'] = sorted(n for n, m in module.named_modules() for b in ('rbr_dense', 'rbr_1x1', 'rbr_identity') if b in m._modules)
    else:
        module = None
        replens_sd = load_any(case['deploy'], weights_only=True)
        result['weightsOnlyLoad'] = True
    result['dtypes'] = sorted({str(v.dtype).replace('torch.', '') for v in replens_sd.values() if v.is_floating_point()})
    deploy = ctor(deploy=True).eval()
    deploy.load_state_dict(collections.OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in replens_sd.items()), strict=True)
    result['strictLoad'] = True

    torch_fused = rfm.fuse_to_deploy(train)             # PyTorch's own fusion, float32
    stored = getattr(torch, result['dtypes'][0])
    if stored != torch.float32:
        # PyTorch's best for a half-precision file: fuse in float32, then round to the file's dtype.
        torch_fused = torch_fused.to(stored).float()
    exact = rfm.fuse_to_deploy(copy.deepcopy(train).double())  # the same fusion in float64: the reference
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = exact(x.double())
        result['outputMaxAbs'] = {'replens': max_abs(deploy(x), want), 'torchFloat32': max_abs(torch_fused(x), want)}
        result['trainVsReplensMaxAbs'] = max_abs(deploy(x), train(x))
        if module is not None:
            result['moduleMaxAbs'] = max_abs(module(x), want)
    exact_sd = exact.state_dict()
    result['weightMaxAbs'] = {'replens': weights_error(replens_sd, exact_sd), 'torchFloat32': weights_error(torch_fused.state_dict(), exact_sd)}
    return result


if __name__ == '__main__':
    run_cases(check, lambda case: {'fixture': case['fixture'], 'deploy': os.path.basename(case['deploy'])})
