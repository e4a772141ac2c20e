#!/usr/bin/python3
"""Checks ONNX files with the onnx package's own checker, shape inference included.

usage: check_onnx.py FILE...
Prints one JSON list: per file, its ir_version and opsets, and the checker's error if any.
"""

import json
import sys

import onnx


def check(path):
    result = {'file': path}
    try:
        model = onnx.load(path)
        result['irVersion'] = model.ir_version
        result['opsets'] = {o.domain: o.version for o in model.opset_import}
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        result['outputs'] = [o.name for o in inferred.graph.output]
        result['ok'] = True
    except Exception as e:  # the checker's message is the point of this script
        result['ok'] = False
        result['error'] = f'{type(e).__name__}: {e}'
    return result


if __name__ == '__main__':
    print(json.dumps([check(p) for p in sys.argv[1:]]))
