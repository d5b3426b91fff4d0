#!/usr/bin/env python3
"""Prints the DEP-5 (machine-readable debian/copyright) paragraphs of the crates linked
into one package's programs: one `Files: vendor/NAME-VERSION/*` paragraph per crate (the
layout of `cargo vendor --versioned-dirs`) with the crate's copyright notices and, in its
License field, its licence texts: each LICENSE*/COPYING*/NOTICE*/UNLICENSE* file the
crate ships, verbatim, except the Apache License 2.0 and the other licences Debian keeps
in /usr/share/common-licenses, which are pointed to there; a crate that ships no licence
file gets the standard text of each licence it declares (packaging/licences/SPDX-ID)
with its Cargo.toml authors as the copyright holders.
Normal dependencies only: build scripts, proc macros and dev-dependencies are not shipped.
Reads `cargo metadata --format-version 1 --filter-platform TRIPLE` on stdin; the arguments
are ARTIFACT=DEST for each of the package's build artifacts (libspank_mlenv.so=/usr/lib/
x86_64-linux-gnu/slurm-wlm/spank_mlenv.so, ml-epilog=/usr/sbin/ml-epilog)."""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STANDARD_TEXTS = os.path.join(HERE, "licences")
# SPDX id -> the file in /usr/share/common-licenses (lintian wants a pointer, not the text).
COMMON_LICENSES = {
    "Apache-2.0": "Apache-2.0",
    "MPL-2.0": "MPL-2.0",
    "CC0-1.0": "CC0-1.0",
    "GPL-2.0": "GPL-2", "GPL-2.0-only": "GPL-2", "GPL-2.0-or-later": "GPL-2",
    "GPL-3.0": "GPL-3", "GPL-3.0-only": "GPL-3", "GPL-3.0-or-later": "GPL-3",
    "LGPL-2.1": "LGPL-2.1", "LGPL-2.1-only": "LGPL-2.1", "LGPL-2.1-or-later": "LGPL-2.1",
    "LGPL-3.0": "LGPL-3", "LGPL-3.0-only": "LGPL-3", "LGPL-3.0-or-later": "LGPL-3",
}
LICENCE_FILE = re.compile(r"^(licen[cs]e|copying|notice|unlicen[cs]e|copyright)([-._].*)?$", re.I)
# "Copyright 2019 Someone", "Copyright (c) ...", "© ..."; not the licences' own sentences
# about copyright notices, nor the Apache appendix's template.
COPYRIGHT_LINE = re.compile(r"^\s*(copyright\b|\(c\)\s.*\d{4}|©)", re.I)
NOT_A_NOTICE = re.compile(r"notice|holders?\b|\[yyyy\]|\{yyyy\}|<year>|\[name of|owner\]|license", re.I)


def die(msg):
    sys.exit(f"error: crate-licences: {msg}")


def is_proc_macro(package):
    return any("proc-macro" in t["kind"] for t in package["targets"])


def artifact_names(target):
    """The files cargo writes for a workspace target."""
    names = set()
    if "bin" in target["kind"]:
        names.add(target["name"])
    if "cdylib" in target["kind"]:
        names.add("lib" + target["name"].replace("-", "_") + ".so")
    return names


def licence_ids(expr):
    """The SPDX ids in a licence expression (`MIT OR Apache-2.0`, old `MIT/Apache-2.0`)."""
    ids = re.split(r"\s+(?:OR|AND|WITH)\s+|/|[()]|\s+", expr)
    return [i for i in ids if i and i.upper() not in ("OR", "AND", "WITH")]


def dep5_expression(expr):
    """DEP-5 writes the operators in lower case: `MIT or Apache-2.0`."""
    expr = expr.replace("/", " OR ")
    expr = re.sub(r"\s+OR\s+", " or ", expr)
    expr = re.sub(r"\s+AND\s+", " and ", expr)
    expr = re.sub(r"\s+WITH\s+", " with ", expr)
    return " ".join(expr.split())


def is_apache_text(text):
    return "Apache License" in text and "TERMS AND CONDITIONS FOR USE" in text


def copyright_lines(text):
    out = []
    for line in text.splitlines():
        if COPYRIGHT_LINE.match(line) and not NOT_A_NOTICE.search(line):
            out.append(" ".join(line.split()))
    return out


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().replace("\r\n", "\n").replace("\r", "\n").expandtabs()


def pointer(spdx):
    return (f"The {spdx} licence: on Debian systems its full text is in "
            f"/usr/share/common-licenses/{COMMON_LICENSES[spdx]}.")


def crate_paragraph(p, dests):
    name, version = p["name"], p["version"]
    root = os.path.dirname(p["manifest_path"])
    expr = p.get("license")
    files = sorted(f for f in os.listdir(root)
                   if LICENCE_FILE.match(f) and os.path.isfile(os.path.join(root, f)))
    if not expr and not files:
        die(f"{name} {version}: declares no licence and ships no licence file")
    ids = licence_ids(expr) if expr else []
    authors = [" ".join(a.split()) for a in p.get("authors") or []]
    notices = []
    body = []  # paragraphs of the License field's text
    pointed = set()
    for f in files:
        text = read(os.path.join(root, f)).strip("\n")
        if is_apache_text(text):
            # The licence's own text speaks of copyright; a notice is in its appendix.
            notices += copyright_lines(text.partition("END OF TERMS AND CONDITIONS")[2])
            body.append(f"{f}: " + pointer("Apache-2.0"))
            pointed.add("Apache-2.0")
        else:
            notices += copyright_lines(text)
            body.append(f"{f}:\n\n{text}")
    if files:
        # A licence the crate declares but ships no file for (zmij: MIT OR Apache-2.0 with
        # LICENSE-MIT only): Debian's copy where there is one.
        for i in ids:
            if i in COMMON_LICENSES and COMMON_LICENSES[i] not in pointed:
                body.append(pointer(i))
                pointed.add(COMMON_LICENSES[i])
    else:
        for i in ids:
            if i in COMMON_LICENSES:
                body.append(pointer(i))
                continue
            std = os.path.join(STANDARD_TEXTS, i)
            if not os.path.isfile(std):
                die(f"{name} {version}: ships no licence file and packaging/licences/ has no "
                    f"standard text of {i}: add it (the SPDX text)")
            body.append(f"The {i} licence (the crate ships no licence file; the standard "
                        f"text, the crate's authors as the copyright holders):\n\n"
                        + read(std).strip("\n"))
    holders = list(dict.fromkeys(notices)) or authors or [f"The {name} authors"]
    lines = [f"Files: vendor/{name}-{version}/*"]
    lines.append("Copyright: " + holders[0])
    lines += [" " + h for h in holders[1:]]
    lines.append("License: " + (dep5_expression(expr) if expr else "other"))
    text = "\n\n".join(body)
    for line in text.split("\n"):
        line = line.rstrip()
        lines.append(" " + line if line else " .")
    source = f"crates.io, {p['repository']}" if p.get("repository") else "crates.io"
    lines.append(f"Comment: The crate {name} {version} ({source}), statically "
                 f"linked into {', '.join(sorted(dests))}.")
    return "\n".join(lines)


def main():
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    linked = {}  # crate id -> the installed files that link it
    for arg in sys.argv[1:]:
        artifact, sep, dest = arg.partition("=")
        if not sep:
            die(f"want ARTIFACT=DEST, got {arg}")
        roots = [i for i in members for t in packages[i]["targets"] if artifact in artifact_names(t)]
        if not roots:
            die(f"{artifact}: no workspace crate builds it")
        todo, seen = roots[:1], set()
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
        for i in seen:
            if i not in members and not is_proc_macro(packages[i]):
                linked.setdefault(i, set()).add(dest)
    crates = sorted(linked, key=lambda i: (packages[i]["name"], packages[i]["version"]))
    print("\n\n".join(crate_paragraph(packages[i], linked[i]) for i in crates))


main()
