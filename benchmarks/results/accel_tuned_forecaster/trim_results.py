"""Keep only the variant runs (method NAME@HASH) in a tuned-protocol results.json; the rest are in ../accel_tuned/results.json."""
import json, sys
src, dst = sys.argv[1], sys.argv[2]
r = json.load(open(src))
runs = r["results"]["runs"]
r["results"]["runs"] = [x for x in runs if "@" in x["method"]]
r["results"]["runs_note"] = (f"only the {len(r['results']['runs'])} jump-variant runs of {len(runs)}; the baseline, "
                             "competitor and default-GFMJump runs are in benchmarks/results/accel_tuned/results.json")
json.dump(r, open(dst, "w"), indent=None)
print(len(runs), "->", len(r["results"]["runs"]))
