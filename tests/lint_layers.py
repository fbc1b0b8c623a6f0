#!/usr/bin/env python3
"""lint_layers.py - the hub's layers stay one-way.

  includes: a module in hub/LAYER/ names another layer's header by folder
            ("inventory/db.h") and only a layer below its own (LOWER); a
            quoted include that is neither its own folder's, shared/'s, a
            process-wide header of hub/ (CORE) nor a lower layer's fails;
            "../" never appears in hub/.
  links:    over the hub's objects (nm), no module reaches back to one that
            reaches it: the graph of "uses a symbol defined in" has no cycle.

Usage: lint_layers.py [--root DIR] [--objects DIR]   (objects: the build
directory holding hub/**/*.o, e.g. build/rel; without it only includes are
checked). Exit 0 clean, 1 with each violation on its own line.
"""
import argparse
import os
import re
import subprocess
import sys

# Who may include whom: api -> http -> domain (gitops, enroll -> inventory) -> shared.
LOWER = {
    'api': {'http', 'inventory', 'gitops', 'enroll'},
    'http': {'inventory'},
    'gitops': {'inventory'},
    'enroll': {'inventory'},
    'inventory': set(),
}
# hub/'s own headers every layer may use: the process's central state and metrics.
CORE = {'hub.h', 'metrics.h'}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check_includes(root):
    bad = []
    hub = os.path.join(root, 'hub')
    shared = set(os.listdir(os.path.join(root, 'shared'))) if os.path.isdir(
        os.path.join(root, 'shared')) else set()
    for layer in sorted(os.listdir(hub)):
        d = os.path.join(hub, layer)
        if not os.path.isdir(d) or layer == 'ctl':
            continue
        if layer not in LOWER:
            bad.append(f'hub/{layer}/: a folder lint_layers.py does not know (add it to LOWER)')
            continue
        own = set(os.listdir(d))
        for f in sorted(own):
            if not f.endswith(('.c', '.h')):
                continue
            text = open(os.path.join(d, f), encoding='utf-8', errors='replace').read()
            for n, line in enumerate(text.splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc, where = m.group(1), f'hub/{layer}/{f}:{n}'
                if '..' in inc.split('/'):
                    bad.append(f'{where}: "{inc}": no relative escapes, name the folder')
                elif '/' in inc:
                    other = inc.split('/')[0]
                    if other == layer:
                        bad.append(f'{where}: "{inc}": its own folder\'s header is "{inc.split("/", 1)[1]}"')
                    elif other not in LOWER[layer]:
                        bad.append(f'{where}: "{inc}": {layer}/ may not include {other}/ '
                                   f'(it may: {", ".join(sorted(LOWER[layer])) or "only shared/"})')
                elif inc not in own and inc not in shared and inc not in CORE:
                    bad.append(f'{where}: "{inc}" is not in hub/{layer}/ nor shared/ nor hub/ core')
    return bad


def symbols(obj):
    out = subprocess.run(['nm', obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in 'TDBRCGS':
            defined.add(p[2])
        elif len(p) == 2 and p[0] == 'U':
            used.add(p[1])
    return defined, used


def check_links(root, objdir):
    objs = {}
    base = os.path.join(objdir, 'hub')
    for dirpath, dirs, files in os.walk(base):
        dirs[:] = [x for x in dirs if x != 'ctl']
        for f in files:
            if not f.endswith('.o'):
                continue
            mod = os.path.relpath(os.path.join(dirpath, f), base)[:-2]
            # only objects whose source still exists (a moved file leaves its old .o)
            if os.path.exists(os.path.join(root, 'hub', mod + '.c')):
                objs[mod] = os.path.join(dirpath, f)
    if not objs:
        return [f'{base}: no objects (build first)']
    defs, uses = {}, {}
    for mod, o in objs.items():
        defs[mod], uses[mod] = symbols(o)
    owner = {s: m for m, d in defs.items() for s in d}
    graph = {m: sorted({owner[s] for s in uses[m] if s in owner and owner[s] != m}) for m in objs}
    # Tarjan's strongly connected components: each one with two or more modules is a loop.
    index, low, stack, on, loops = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                loops.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    bad = []
    for comp in loops:
        edges = [f'{a} -> {b}' for a in comp for b in graph[a] if b in comp]
        bad.append('link cycle among ' + ', '.join(comp) + ': ' + '; '.join(edges))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default='.')
    ap.add_argument('--objects')
    a = ap.parse_args()
    bad = check_includes(a.root)
    if a.objects:
        bad += check_links(a.root, a.objects)
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
