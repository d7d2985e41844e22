#!/usr/bin/env python3
"""tests/structure.py BUILD_DIR — checks the shape of the source tree.

The house is built in layers (README, "Layout"): each folder under src/ may
use the folders below it and never the ones above, and no two files lean on
each other. This script measures that from what the compiler and the linker
see, not from what the comments claim:

  * a file depends on another when it includes the other's header, or when
    its object (BUILD_DIR/<folder>/<file>.o) leaves a symbol undefined that
    the other's object defines (nm);
  * a "file" is a stem: src/model/model.c and src/model/model.h are one node
    (a header without a .c, like src/formats/hf.h, is a node of its own).

It prints one CHECK line per fact and closes with
"structure: N passed, N failed" (exit 1 on any failure), like the C tests.
"""
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # loading scripts/amalgamate-header leaves nothing behind

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SRC = os.path.join(ROOT, "src")

# Folder order, lowest first. Folders sharing a rank are peers: neither may
# use the other (lens and infer). A folder not listed here is an error.
ORDER = [["base"], ["tensor"], ["model"], ["formats"], ["text"], ["lens", "infer"],
         ["store"], ["report"], ["synth"], ["cli"]]
RANK = {f: i for i, fs in enumerate(ORDER) for f in fs}

MAX_LINES = 800
STDIO = {"printf", "fprintf", "fopen", "fwrite", "fputs", "puts", "putc", "fputc", "vprintf",
         "vfprintf"}
STDIO |= {"__%s_chk" % s for s in STDIO}
# Ways to end the process that the library must leave to the program. abort()
# is not among them: out of memory is fatal by design (base/util.h).
EXITS = {"exit", "_exit", "_Exit", "quick_exit"}

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s" % what)
    else:
        failed += 1
        print("FAIL %s%s" % (what, (": " + detail) if detail else ""))


# ---- the files --------------------------------------------------------------

def folders():
    return sorted(d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d)))


def sources():
    """Every .c/.h under src/, as paths relative to src/ ("model/model.c")."""
    out = []
    for d in folders():
        for f in sorted(os.listdir(os.path.join(SRC, d))):
            if f.endswith((".c", ".h")):
                out.append(d + "/" + f)
    return out


def node(rel):
    """The node of a file: its path without the extension ("model/model")."""
    return os.path.splitext(rel)[0]


def folder(n):
    return n.split("/", 1)[0]


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(rel):
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


# ---- the objects (nm) -------------------------------------------------------

def nm(obj):
    """The global symbols of one object: {(name, nm kind)} defined, {name} undefined."""
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        sym, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(sym)
        elif kind.isupper():  # global: T (code), D B R (data), W V (weak) ...
            defined.add((sym, kind))
    return defined, undefined


def objects(build):
    """{node: object path} for every source file that has an object."""
    out = {}
    for rel in sources():
        if rel.endswith(".c"):
            o = os.path.join(build, node(rel) + ".o")
            if os.path.exists(o):
                out[node(rel)] = o
    return out


# ---- the graph --------------------------------------------------------------

def graph(build):
    """{node: {node: why}} over include and call edges."""
    edges = {}
    nodes = {node(r) for r in sources()}

    def add(a, b, why):
        if a != b:
            edges.setdefault(a, {}).setdefault(b, why)

    for rel in sources():
        for inc in includes(rel):
            target = node(inc)
            if target in nodes:
                add(node(rel), target, "includes %s" % inc)
    objs = objects(build)
    syms = {n: nm(o) for n, o in objs.items()}
    owner = {}
    for n, (defined, _) in syms.items():
        for s, kind in defined:
            owner.setdefault(s, (n, "calls" if kind in "TW" else "uses"))
    for n, (_, undefined) in syms.items():
        for s in sorted(undefined):
            if s in owner:
                add(n, owner[s][0], "%s %s" % (owner[s][1], s))
    return edges, syms


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(set(edges) | {w for e in edges.values() for w in e}):
        if v not in index:
            visit(v)
    return out


def describe_cycle(edges, comp):
    """One shortest circle through the component's first node, with the
    include or call behind each arrow: "a (calls f) -> b (includes a.h) -> a"."""
    start, inside = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, {})):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                steps = ["%s (%s)" % (a, edges[a][b]) for a, b in zip(path, path[1:] + [start])]
                return " -> ".join(steps + [start]) + ("; %d files in this knot: %s" % (len(comp), " ".join(comp))
                                                       if len(comp) > len(path) else "")
            if w in inside and w not in prev:
                prev[w] = v
                queue.append(w)
    return " ".join(comp)


# ---- the checks -------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        sys.exit("usage: structure.py BUILD_DIR (e.g. build/opt)")
    build = sys.argv[1]
    if not os.path.isdir(os.path.join(build, "base")):
        sys.exit("structure.py: %s holds no objects (build it first)" % build)
    edges, syms = graph(build)

    # A missing object would hide its calls: measure a whole build only.
    missing = sorted("src/%s" % r for r in sources() if r.endswith(".c") and node(r) not in syms)
    check(not missing, "%s holds an object for every source" % build, ", ".join(missing))

    # No circle between files.
    comps = cycles(edges)
    check(not comps, "no circle between files (includes and calls)",
          "; ".join(describe_cycle(edges, c) for c in comps))

    # Arrows only point down the folder order.
    unknown = [d for d in folders() if d not in RANK]
    check(not unknown, "every folder under src/ has a place in the order", ", ".join(unknown))
    bad = []
    for a in sorted(edges):
        for b, why in sorted(edges[a].items()):
            fa, fb = folder(a), folder(b)
            if fa != fb and RANK.get(fa, -1) <= RANK.get(fb, -1):
                bad.append("%s %s" % (a, why))
    check(not bad, "every arrow between folders points down", "; ".join(bad))

    n = len(folders())
    check(n >= 4, "at least 4 folders under src/", "%d" % n)

    # The order is written in three places; they must agree.
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        m = re.search(r"^LAYERS\s*=\s*(.*)$", f.read(), re.M)
    make_layers = m.group(1).split() if m else []
    loader = importlib.machinery.SourceFileLoader("amalgamate", os.path.join(ROOT, "scripts", "amalgamate-header"))
    spec = importlib.util.spec_from_loader("amalgamate", loader)
    amalgamate = importlib.util.module_from_spec(spec)
    loader.exec_module(amalgamate)
    ours = [fs for fs in ORDER if fs != ["cli"]]
    check(make_layers == [f for fs in ours for f in fs] and amalgamate.RANKS == ours,
          "the Makefile, scripts/amalgamate-header and this test name one folder order",
          "Makefile %s, amalgamate-header %s, here %s" % (make_layers, amalgamate.RANKS, ours))

    # Small files.
    long_files = []
    for rel in sources():
        with open(os.path.join(SRC, rel), encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        if lines > MAX_LINES:
            long_files.append("src/%s has %d lines" % (rel, lines))
    check(not long_files, "no .c/.h file under src/ over %d lines" % MAX_LINES, "; ".join(long_files))

    # The lens computes; writing is someone else's job.
    lens_io = ["%s calls %s" % (k, ", ".join(sorted(u & STDIO)))
               for k, (_, u) in sorted(syms.items()) if folder(k) == "lens" and u & STDIO]
    check(not lens_io, "src/lens calls no stdio function", "; ".join(lens_io))

    # One thread pool.
    users = sorted(k for k, (_, u) in syms.items() if "pthread_create" in u)
    check(len(users) == 1, "pthread_create referenced by one object only",
          "%d: %s" % (len(users), ", ".join(users)))

    # The library never ends the process.
    exits = sorted("%s (%s)" % (k, ", ".join(sorted(u & EXITS))) for k, (_, u) in syms.items()
                   if folder(k) != "cli" and u & EXITS)
    check(not exits, "no library object references exit", ", ".join(exits))

    # The program uses the library through its one public header.
    cli_bad = []
    for rel in sources():
        if folder(rel) != "cli":
            continue
        for inc in includes(rel):
            if inc != "neuromap.h" and not (inc.startswith("cli/") and inc.endswith(".h")):
                cli_bad.append("src/%s includes %s" % (rel, inc))
    check(not cli_bad, "src/cli includes only neuromap.h and cli headers", "; ".join(cli_bad))
    ex_bad, ex_dir = [], os.path.join(ROOT, "examples")
    for name in sorted(os.listdir(ex_dir)) if os.path.isdir(ex_dir) else []:
        if name.endswith((".c", ".h")):
            with open(os.path.join(ex_dir, name), encoding="utf-8") as f:
                ex_bad += ["examples/%s includes %s" % (name, inc) for inc in INCLUDE.findall(f.read())
                           if inc != "neuromap.h"]
    check(not ex_bad, "examples include only neuromap.h", "; ".join(ex_bad))

    # include/neuromap.h is what scripts/amalgamate-header makes today.
    header = os.path.join(ROOT, "include", "neuromap.h")
    script = os.path.join(ROOT, "scripts", "amalgamate-header")
    why = ""
    try:
        want = subprocess.run([sys.executable, script], capture_output=True, text=True,
                              check=True).stdout
        with open(header, encoding="utf-8") as f:
            have = f.read()
        if have != want:
            why = "stale: make writes it from the layer headers (make include/neuromap.h)"
    except (OSError, subprocess.CalledProcessError) as ex:
        why = str(ex)
    check(not why, "include/neuromap.h is up to date", why)

    print("structure: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
