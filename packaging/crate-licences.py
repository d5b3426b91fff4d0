#!/usr/bin/env python3
"""Prints `name version licence` for every crate linked into the given workspace crates
(normal dependencies only: build scripts and dev-dependencies are not shipped).
Reads `cargo metadata --format-version 1` on stdin; the crate names are the arguments."""
import json
import sys


def is_proc_macro(package):
    return any("proc-macro" in t["kind"] for t in package["targets"])


def main():
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    wanted = set(sys.argv[1:])
    todo = [i for i, p in packages.items() if p["name"] in wanted and i in meta["workspace_members"]]
    missing = wanted - {packages[i]["name"] for i in todo}
    if missing:
        sys.exit(f"error: not workspace crates: {', '.join(sorted(missing))}")
    seen = set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        if is_proc_macro(packages[i]):
            continue  # runs in the compiler: neither it nor its dependencies are shipped
        for dep in nodes[i]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    shipped = (packages[i] for i in seen if not is_proc_macro(packages[i]))
    for p in sorted(shipped, key=lambda p: (p["name"], p["version"])):
        if p["id"] in meta["workspace_members"]:
            continue  # ours: the Apache-2.0 paragraph covers them
        print(p["name"], p["version"], p.get("license") or "see the crate's licence file")


main()
