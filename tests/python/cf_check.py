"""Run the IOOS compliance checker (CF-1.11) on NetCDF files and fail on any error or warning.

Usage: python cf_check.py FILE.nc...

Prints one line per file with its error and warning counts, then every message. Exit status 1 if any file has an
error (a failed high-priority check) or a warning (a failed medium-priority check), 0 otherwise. Low-priority
suggestions are printed but do not fail.
"""

import json
import os
import sys
import tempfile

from compliance_checker.runner import CheckSuite, ComplianceChecker


def failures(groups):
    """Messages of the failed checks in one priority group of the JSON report."""
    out = []
    for g in groups:
        got, possible = g["value"]
        if got < possible:
            msgs = g["msgs"] or ["(no message)"]
            out.extend(f"{g['name']}: {m}" for m in msgs)
    return out


def main(paths):
    CheckSuite.load_all_available_checkers()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            if not os.path.isfile(path):
                print(f"{path}: no such file")
                bad += 1
                continue
            report = os.path.join(tmp, "report.json")
            ComplianceChecker.run_checker(
                path, ["cf:1.11"], 0, "strict", output_filename=report, output_format="json"
            )
            with open(report) as f:
                r = json.load(f)["cf:1.11"]
            errors = failures(r["high_priorities"])
            warnings = failures(r["medium_priorities"])
            notes = failures(r["low_priorities"])
            print(f"{path}: {len(errors)} errors, {len(warnings)} warnings, {len(notes)} suggestions")
            for kind, msgs in (("error", errors), ("warning", warnings), ("suggestion", notes)):
                for m in msgs:
                    print(f"  {kind}: {m}")
            bad += len(errors) + len(warnings)
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
