#!/usr/bin/env python3
"""List the module edges of gitea-sim (file A uses module B via `crate::B` or
`super::B`, in code, not in comments) and fail when the graph has a cycle.

lib.rs is the crate root: `crate::Name` with Name not a module is an edge to lib.
Doc links (`//` lines) are not edges. Usage: scripts/module-graph.py [src-dir]"""
import os, re, sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
files = sorted(f[:-3] for f in os.listdir(src) if f.endswith(".rs"))
mods = set(files) - {"lib"}
edges = {f: set() for f in files}
for f in files:
    text = open(os.path.join(src, f + ".rs")).read()
    code = "\n".join(l.split("//")[0] for l in text.splitlines())
    # Expand `use crate::{a, b::c}` / `use super::{...}` groups.
    for m in re.finditer(r"\b(crate|super)::(\{[^}]*\}|\w+|\*)", code):
        g = m.group(2)
        names = re.findall(r"(?:^|[{,]\s*)(\w+)", g) if g.startswith("{") else ["lib" if g == "*" else g]
        for n in names:
            t = n if n in mods else "lib"
            if t != f:
                edges[f].add(t)
    if f == "lib":
        for m in re.finditer(r"\b(?:pub\s+)?use\s+(\w+)::", code):
            if m.group(1) in mods:
                edges[f].add(m.group(1))
        for m in re.finditer(r"\b(\w+)::\w", code):
            if m.group(1) in mods:
                edges[f].add(m.group(1))

for f in files:
    print(f"{f}: {' '.join(sorted(edges[f])) or '-'}")

# Cycle check (DFS); `tests` is a test-only child of lib and only uses lib.
state, stack = {}, []
def visit(n):
    state[n] = 1; stack.append(n)
    for m in sorted(edges[n]):
        if state.get(m) == 1:
            print("CYCLE: " + " -> ".join(stack[stack.index(m):] + [m])); sys.exit(1)
        if m not in state:
            visit(m)
    state[n] = 2; stack.pop()
for f in files:
    if f not in state:
        visit(f)
print("no cycles")
