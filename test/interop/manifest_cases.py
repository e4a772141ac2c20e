"""The loop the interop scripts share: one JSON manifest of cases in, one JSON list of results out."""

import json
import sys


def run_cases(run, on_error=lambda case: {}):
    """Calls run(case) for each case of the manifest named by argv[1] and prints the results.

    A case that raises is reported with its error (plus on_error(case)) so that one
    failure does not hide the others.
    """
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = []
    for case in cases:
        try:
            results.append(run(case))
        except Exception as e:
            results.append({**on_error(case), 'error': f'{type(e).__name__}: {e}'})
    print(json.dumps(results, indent=1))
