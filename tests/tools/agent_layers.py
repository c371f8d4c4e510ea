#!/usr/bin/env python3
"""Fails when the agent's files (cluster/agent/*.c) call each other in a
cycle (docs/agent.md, "The files"). A file's functions are the non-static
definitions at the start of a line; a call is the name followed by "(" outside
comments. Usage: agent_layers.py DIR"""
import collections
import glob
import os
import re
import sys

DEF = re.compile(r'^(?!static)[a-z_][a-z0-9_ *]*?\b([a-z_][a-z0-9_]*)\(', re.M)
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)


def calls_between(folder):
    texts = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(folder, '*.c'))}
    owner = {}
    for f, text in texts.items():
        for m in DEF.finditer(text):
            owner[m.group(1)] = f
    edges = collections.defaultdict(lambda: collections.defaultdict(list))
    for f, text in texts.items():
        code = COMMENT.sub('', text)
        for name in set(re.findall(r'\b([a-z_][a-z0-9_]*)\(', code)):
            g = owner.get(name)
            if g and g != f:
                edges[f][g].append(name)
    return sorted(texts), edges


def find_cycle(files, edges):
    state = {}
    stack = []

    def visit(f):
        state[f] = 1
        stack.append(f)
        for g in sorted(edges[f]):
            if state.get(g) == 1:
                return stack[stack.index(g):] + [g]
            if g not in state:
                c = visit(g)
                if c:
                    return c
        stack.pop()
        state[f] = 2
        return None

    for f in files:
        if f not in state:
            c = visit(f)
            if c:
                return c
    return None


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else 'cluster/agent'
    files, edges = calls_between(folder)
    if len(files) < 2:
        print('agent_layers: no C files in %s' % folder)
        return 2
    cycle = find_cycle(files, edges)
    if cycle:
        print('agent_layers: the files call each other in a cycle:')
        for a, b in zip(cycle, cycle[1:]):
            print('  %s -> %s (%s)' % (a, b, ', '.join(sorted(edges[a][b])[:4])))
        return 1
    print('agent_layers: %d files, no cycle' % len(files))
    return 0


if __name__ == '__main__':
    sys.exit(main())
