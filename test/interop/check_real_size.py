#!/usr/bin/python3
"""Checks RepLens' deploy files of real-size models against PyTorch's own fusion in float64.

usage: check_real_size.py MANIFEST.json   (a list of {"model", "dtype", "train", "deploy"}; "model" names
an entry of replens_fixture_models.REAL_SIZE, "dtype" the train checkpoint's floating-point dtype; cases
of one train file listed together)
A case with "module": true is a deploy checkpoint holding the pickled model: it is loaded as that model,
which must be in deploy form, and run as it is.
Prints one JSON list: per case, whether the deploy file loads (weights_only, strict), every tensor of it
with its size and error, the worst fused tensor, and output errors. Fused tensors are measured against
the float64 fusion of the train checkpoint's weights (upcast exactly); every other tensor must be the
train checkpoint's, bit for bit. Errors that are not finite are reported as null.
"""

import functools
import math

import torch

from check_deploy import load_any, rfm, stored_state_dict
from manifest_cases import run_cases

INPUT_SHAPE = (1, 3, 64, 64)


def ulp(x, dtype):
    """The spacing of dtype's values at |x|: eps·2^floor(log2|x|), and eps·tiny all through the subnormals."""
    info = torch.finfo(dtype)
    _, exponent = torch.frexp(x.abs().clamp(min=info.tiny))
    return torch.ldexp(torch.tensor(info.eps, dtype=torch.float64), exponent - 1)


def round_once(x, spacing, dtype):
    """float64 x rounded half to even to dtype. Not x.to(dtype): PyTorch converts float64 to float16 and
    bfloat16 through float32, which rounds twice and can land one ulp off."""
    return (torch.round(x / spacing) * spacing).to(dtype)


def bits(t):
    """The tensor's raw bits as integers, so NaN payloads and -0.0 are compared exactly."""
    return t.contiguous().view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def finite(x):
    return x if math.isfinite(x) else None


def rel_err(got, want):
    """max |got − want| / max |want| over all of a model's outputs."""
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    return finite(max((g - w).abs().max().item() for g, w in zip(got, want)) / max(w.abs().max().item() for w in want))


class FusedReference:
    """A fused tensor of PyTorch's float64 fusion, with what measuring a stored copy against it needs."""

    def __init__(self, exact, dtype):
        self.exact = exact
        self.spacing = ulp(exact, dtype)
        self.rounded = round_once(exact, self.spacing, dtype)
        self.peak = exact.abs().max().item()
        # Below the smallest normal the dtype's spacing is fixed, so relative errors there are taken against tiny.
        self.magnitude = exact.abs().clamp_(min=torch.finfo(dtype).tiny)


class Reference:
    """A train checkpoint as stored, its model's output in float64 on a seeded input, and PyTorch's float64 fusion."""

    def __init__(self, model, train_path, dtype):
        ctor, seed = rfm.REAL_SIZE[model]
        self.stored = stored_state_dict(train_path)
        train = ctor().double().eval()
        train.load_state_dict(self.stored, strict=True)  # copy_ upcasts exactly
        self.blocks = sum(isinstance(m, rfm.RepBlock) for m in train.modules())
        exact = rfm.fuse_to_deploy(train)
        self.x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with torch.no_grad():
            self.want = train(self.x)
            self.exact_vs_train = rel_err(exact(self.x), self.want)
        self.fused = {name: FusedReference(value, dtype) for name, value in exact.state_dict().items()
                      if name not in self.stored}


@functools.lru_cache(maxsize=1)  # one at a time: a float64 B1g2 and its fusion take a few GB
def reference(model, train_path, dtype):
    return Reference(model, train_path, dtype)


def fused_error(got, ref):
    """got (as stored) against the float64 fusion: in ulps of the dtype, relative, and against its rounding."""
    err = got.double().sub_(ref.exact).abs_()  # in place: these tensors run to hundreds of MB in float64
    return {
        'nonFinite': int((~torch.isfinite(got)).sum()),
        'maxUlps': finite(err.div(ref.spacing).max().item()),
        'relErr': finite(err.max().item() / ref.peak),
        'maxElementRel': finite(err.div_(ref.magnitude).max().item()),
        # Elements whose bits differ from the float64 fusion rounded once (half to even) to the dtype.
        'notRoundedOnce': int((bits(got) != bits(ref.rounded)).sum()) if got.dtype == ref.rounded.dtype else got.numel(),
    }


def passed_through_error(got, stored):
    same = got.dtype == stored.dtype and got.shape == stored.shape
    differing = int((bits(got) != bits(stored)).sum()) if same else got.numel()
    return {'identical': same and differing == 0, 'differing': differing}


def check(case):
    dtype = getattr(torch, case['dtype'])
    ref = reference(case['model'], case['train'], dtype)
    result = {'model': case['model'], 'dtype': case['dtype'], 'deploy': case['deploy'], 'blocks': ref.blocks}
    if case.get('module'):
        # A pickled model in, a pickled model out: torch.load rebuilds it (the fixture classes importable).
        module = torch.load(case['deploy'], map_location='cpu')['model']
        replens_sd = {k: v.clone() for k, v in module.state_dict().items()}
        module = module.double().eval()
        result['trainBranchesLeft'] = sorted(n for n, m in module.named_modules() if isinstance(m, rfm.RepBlock) and any(b in m._modules for b in m.branch_names))
    else:
        module = None
        replens_sd = load_any(case['deploy'], weights_only=True)
        result['weightsOnlyLoad'] = True
    deploy = rfm.REAL_SIZE[case['model']][0](deploy=True).double().eval()
    deploy.load_state_dict(replens_sd, strict=True)
    result['strictLoad'] = True

    tensors = []
    for name, got in replens_sd.items():
        entry = {'name': name, 'dtype': str(got.dtype).replace('torch.', ''), 'bytes': got.numel() * got.element_size()}
        if name in ref.stored:
            entry.update(fused=False, **passed_through_error(got, ref.stored[name]))
        else:
            entry.update(fused=True, **fused_error(got, ref.fused[name]))
        tensors.append(entry)
    result['tensors'] = tensors
    worst = max((t for t in tensors if t['fused']), key=lambda t: math.inf if t['maxUlps'] is None else t['maxUlps'])
    result['worst'] = {k: worst[k] for k in ('name', 'maxUlps', 'relErr')}

    # Both deploy models run in float64 on weights of the file's dtype: RepLens' and the float64 fusion
    # rounded once, which is what fusing in float64 and rounding once writes. The same weights give the
    # same outputs; the errors against the train model say what storing the file's dtype costs.
    with torch.no_grad():
        got = deploy(ref.x)
        if module is not None:
            result['moduleVsReplens'] = rel_err(module(ref.x), got)
        deploy.load_state_dict({k: ref.fused[k].rounded if k in ref.fused else ref.stored[k] for k in replens_sd}, strict=True)
        best = deploy(ref.x)
    result['outputs'] = {
        'exactVsTrain': ref.exact_vs_train,
        'replensVsRounded': rel_err(got, best),
        'roundedVsTrain': rel_err(best, ref.want),
        'replensVsTrain': rel_err(got, ref.want),
    }
    return result


if __name__ == '__main__':
    run_cases(check, lambda case: {'model': case['model'], 'dtype': case['dtype'], 'deploy': case['deploy']})
