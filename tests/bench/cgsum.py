#!/usr/bin/env python3
"""Summarise a callgrind output file: self and inclusive instruction counts per
function (callgrind_annotate 3.19 mislabels inclusive costs of threaded Rust programs).

    python3 tests/bench/cgsum.py callgrind.out.123 [top] [regex for the inclusive list]
"""
import sys, re, collections
names = {}
selfc = collections.Counter(); incl = collections.Counter()
def name(kind, s):
    m = re.match(r"\((\d+)\)(?: (.*))?", s)
    if not m: return s
    k = (kind, m.group(1))
    if m.group(2): names[k] = m.group(2)
    return names.get(k, s)
fn = None; after_calls = False; cfn = None
total = 0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("fn="):
        fn = name("fn", line[3:]); after_calls = False; continue
    if line.startswith("cfn="):
        cfn = name("fn", line[4:]); continue
    if line.startswith("calls="):
        after_calls = True; continue
    if line and (line[0].isdigit() or line[0] in "+-*"):
        parts = line.split()
        if len(parts) < 2: continue
        c = int(parts[1])
        if after_calls:
            if cfn != fn: incl[fn] += c
            after_calls = False
        else:
            selfc[fn] += c; incl[fn] += c; total += c
        continue
    if line.startswith("summary:") or line.startswith("totals:"):
        pass
top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
pat = sys.argv[3] if len(sys.argv) > 3 else None
print(f"total Ir {total:,}")
print("--- self")
for f, c in selfc.most_common(top):
    print(f"{c/total*100:6.2f}%  {f[:150]}")
print("--- inclusive (matching)" if pat else "--- inclusive")
items = [(f, c) for f, c in incl.most_common() if (not pat or re.search(pat, f))]
for f, c in items[:top]:
    print(f"{c/total*100:6.2f}%  {f[:150]}")
