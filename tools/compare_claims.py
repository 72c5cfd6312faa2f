"""Compare two claims tables row by row, by (claim_id, artifact_id), ignoring row order.

    python tools/compare_claims.py results/a/tables/claims.csv results/b/tables/claims.csv

Prints the rows whose value, holds or note differ, and exits 1 if any does (a refactoring that
must not change the science passes with exit 0).
"""

import sys

from sgdconv.claims import read_claims

KEY = ["claim_id", "artifact_id"]


def main(before: str, after: str) -> int:
    a, b = (
        read_claims(p).sort_values([*KEY, "value"]).reset_index(drop=True) for p in (before, after)
    )
    if a[KEY].values.tolist() != b[KEY].values.tolist():
        print("the two tables have different claims")
        return 1
    # holds is True/False/None (a reported value); sorting may turn None into NaN
    holds_a, holds_b = (f["holds"].map({True: "yes", False: "no"}).fillna("report") for f in (a, b))
    differ = (a["value"] != b["value"]) | (holds_a != holds_b) | (a["note"] != b["note"])
    differ &= ~(a["value"].isna() & b["value"].isna() & (a["note"] == b["note"]))
    for i in differ[differ].index:
        print(f"{a.at[i, 'claim_id']}: {a.at[i, 'value']} -> {b.at[i, 'value']}")
    print(f"{len(a)} rows, {int(differ.sum())} differ")
    return int(bool(differ.any()))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
