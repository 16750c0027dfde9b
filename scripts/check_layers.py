#!/usr/bin/env python3
"""Checks the rooms (layers) of the code and the size of its files.

  python3 scripts/check_layers.py           every #include "..." in src/, tools/, include/ and
                                            examples/ against the rooms, bottom to top
  python3 scripts/check_layers.py --sizes   every source file (src/, tools/, include/, tests/,
                                            examples/; *.cpp *.h *.cu *.cuh, not tests/data)
                                            over 800 lines
  python3 scripts/check_layers.py --edges   the include-edge table (room -> rooms it includes)
  python3 scripts/check_layers.py --self-test  the checker on a planted tree (ctest lint.selftest)

A file may include its own room and rooms below it (docs/architecture.md, "Rooms").
tools/ and examples/ may include only the public headers (include/anvil/*.h) and their own
headers; a public header may include only public headers. Prints one line per violation
("file:line: room X includes room Y (Y is above X)") and exits 1 when there is any.
"""
import argparse
import os
import re
import sys

# The rooms, bottom to top.
ROOMS = ["core", "graph", "ops", "passes", "import", "backend", "runtime", "verify", "tools"]
RANK = {r: i for i, r in enumerate(ROOMS)}

# The room of each public header: where the code it declares lives.
PUBLIC = {
    "tensor.h": "core",      # src/core/tensor.cpp
    "error.h": "core",       # src/core/error.cpp
    "npy.h": "core",         # src/core/npy.cpp
    "image.h": "core",       # src/core/image.cpp
    "names.h": "core",       # src/core/names.cpp
    "graph.h": "graph",      # src/graph/graph.cpp, attributes.cpp (validate/infer: src/ops/infer.cpp)
    "summary.h": "graph",    # src/graph/summary.cpp
    "ops.h": "ops",          # src/ops/registry.cpp and the OpDefs
    "builder.h": "ops",      # src/ops/builder.cpp: emits ops by name, runs their shape rules
    "import.h": "import",    # src/import/registry.cpp
    "preprocess.h": "import",  # src/import/caffe/caffe_mean.cpp (reads Caffe's BlobProto)
    "session.h": "runtime",  # src/runtime/session.cpp (backend_names: src/backend/registry.cpp)
    "version.h": "runtime",  # src/runtime/build_info.cpp
    "pipeline.h": "runtime",  # src/runtime/pipeline.cpp
    "verify.h": "verify",    # src/verify/
    "anvil.h": "verify",     # includes every public header: the top of the library
}

SOURCE_EXT = (".cpp", ".h", ".cu", ".cuh", ".hpp", ".cc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
MAX_LINES = 800


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_files(root, tops, exclude=()):
    for top in tops:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            rel_d = os.path.relpath(d, root)
            dirs[:] = sorted(x for x in dirs if os.path.join(rel_d, x) not in exclude)
            for f in sorted(files):
                if f.endswith(SOURCE_EXT):
                    yield os.path.join(rel_d, f)


def room_of_file(rel):
    """The room of a file of the repository (path relative to the root), or None."""
    parts = rel.split(os.sep)
    if parts[0] == "src" and len(parts) > 2 and parts[1] in RANK:
        return parts[1]
    if parts[0] in ("tools", "examples"):
        return "tools"
    if parts[0] == "include" and len(parts) == 3 and parts[1] == "anvil":
        return PUBLIC.get(parts[2])
    return None


def resolve(root, including, target):
    """The repository path an include names (as the build's include paths find it): ("public",
    name) for include/anvil/*, ("src", path) for src/..., ("local", path) for a header beside
    the including file; None when it names none of those."""
    if target.startswith("anvil/"):
        return ("public", target[len("anvil/"):])
    local = os.path.normpath(os.path.join(os.path.dirname(including), target))
    if os.path.exists(os.path.join(root, local)):
        if local.startswith("src" + os.sep):
            return ("src", local)
        return ("local", local)
    src = target[len("src/"):] if target.startswith("src/") else target
    first = src.split("/")[0]
    if first in RANK:  # a src/ header, or one generated from a src/ schema (caffe.pb.h, ...)
        return ("src", os.path.join("src", src))
    return None


def check_layers(root):
    problems = []
    edges = {}
    for rel in source_files(root, ["src", "tools", "include", "examples"]):
        room = room_of_file(rel)
        where = rel
        if room is None:
            problems.append(f"{rel}:1: file is in no room (add it to PUBLIC in scripts/check_layers.py)")
            continue
        public_only = rel.startswith(("tools" + os.sep, "examples" + os.sep, "include" + os.sep))
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                target = m.group(1)
                r = resolve(root, rel, target)
                at = f"{where}:{lineno}"
                if r is None:
                    problems.append(f'{at}: include "{target}" names no file of a room')
                    continue
                kind, path = r
                if kind == "public":
                    to = PUBLIC.get(path)
                    if to is None:
                        problems.append(f'{at}: include "{target}": public header in no room '
                                        "(add it to PUBLIC in scripts/check_layers.py)")
                        continue
                elif kind == "src":
                    to = room_of_file(path)
                    if public_only:
                        what = "a public header" if rel.startswith("include") else room
                        problems.append(f'{at}: {what} includes "{target}", a private header of '
                                        f"room {to} (use only include/anvil/*.h)")
                        continue
                else:  # a header beside the file: its own room
                    to = room_of_file(path) or room
                edges.setdefault(room, set()).add(to)
                if RANK[to] > RANK[room]:
                    problems.append(f"{at}: room {room} includes room {to} ({to} is above {room})")
    return problems, edges


def check_sizes(root):
    over = []
    for rel in source_files(root, ["src", "tools", "include", "tests", "examples"],
                            exclude={os.path.join("tests", "data")}):
        with open(os.path.join(root, rel), "rb") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            over.append((n, rel))
    return sorted(over, key=lambda x: (-x[0], x[1]))


def self_test():
    """Checks the checker on a small tree with one edge of each kind; returns 0 when it finds
    exactly the planted problems."""
    import tempfile
    files = {
        "include/anvil/ops.h": '#include "anvil/graph.h"\n',
        "include/anvil/graph.h": '#include "anvil/tensor.h"\n',
        "include/anvil/tensor.h": "",
        "src/core/a.cpp": '#include "anvil/tensor.h"\n#include "anvil/graph.h"\n',    # up
        "src/ops/b.h": "",
        "src/ops/b.cpp": '#include "ops/b.h"\n#include "anvil/ops.h"\n#include "b.h"\n',  # ok
        "src/runtime/c.cpp": '#include "ops/b.h"\n#include "verify/d.h"\n',          # up
        "src/verify/d.h": "",
        "tools/e.cpp": '#include "anvil/ops.h"\n#include "e.h"\n#include "ops/b.h"\n',  # private
        "tools/e.h": "",
        "tests/big.cpp": "x\n" * (MAX_LINES + 1),
        "tests/data/big.h": "x\n" * (MAX_LINES + 1),  # tests/data is not checked
    }
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        problems, _ = check_layers(root)
        want = [
            "src/core/a.cpp:2: room core includes room graph (graph is above core)",
            "src/runtime/c.cpp:2: room runtime includes room verify (verify is above runtime)",
            'tools/e.cpp:3: tools includes "ops/b.h", a private header of room ops (use only include/anvil/*.h)',
        ]
        sizes = check_sizes(root)
    ok = problems == want and sizes == [(MAX_LINES + 1, "tests/big.cpp")]
    if not ok:
        print("self-test failed:", problems, sizes, sep="\n  ")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", action="store_true", help=f"list source files over {MAX_LINES} lines")
    ap.add_argument("--edges", action="store_true", help="print the include-edge table")
    ap.add_argument("--self-test", action="store_true", help="check the checker on a planted tree")
    ap.add_argument("--root", default=repo_root(), help="repository root (default: this script's)")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if a.sizes:
        over = check_sizes(a.root)
        for n, rel in over:
            print(f"{rel}: {n} lines (over {MAX_LINES})")
        if over:
            print(f"{len(over)} file(s) over {MAX_LINES} lines", file=sys.stderr)
        return 1 if over else 0
    problems, edges = check_layers(a.root)
    if a.edges:
        for room in ROOMS:
            tos = sorted(edges.get(room, ()), key=lambda r: RANK[r])
            print(f"{room:8} -> {', '.join(tos)}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) break the rooms (bottom to top: {' -> '.join(ROOMS)})",
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
