#!/usr/bin/env python3
"""tests/check_api_doc.py - docs/api.md must not drift from include/weft/.

Collects every public name the headers declare (WEFT_API functions, static
inline functions, typedef names, enum constants and macros; internal names
that start with weft__/WEFT__, and include guards, are left out) and fails,
listing them, when one is missing from docs/api.md. It also fails for a
weft_/WEFT_ name in one of api.md's headings that no header declares.

Usage: check_api_doc.py [SOURCE_ROOT]   (default: the parent of tests/)
"""
import os
import re
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_names(text):
    code = strip_comments(text)
    names = set()
    # Macros (object- and function-like).
    for m in re.finditer(r"^\s*#\s*define\s+([A-Za-z_]\w*)", code, re.M):
        names.add(m.group(1))
    # Exported and inline functions: the identifier before the first "(".
    for m in re.finditer(r"\bWEFT_API\b([^;{]*?)\b([a-z_]\w*)\s*\(", code):
        names.add(m.group(2))
    for m in re.finditer(r"\bstatic\s+inline\b[^;{(]*?\b([a-z_]\w*)\s*\(", code):
        names.add(m.group(1))
    # typedef names: "} name;" ends a struct/enum typedef; "typedef X name;"
    # and function pointer typedefs "(*name)(".
    flat = code
    while True:  # struct and union bodies out of the way: "typedef struct s {} name;"
        nxt = re.sub(r"\{[^{}]*\}", "{}", flat)
        if nxt == flat:
            break
        flat = nxt
    for m in re.finditer(r"\btypedef\b(.*?);", flat, re.S):
        body = m.group(1)
        fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(", body)
        if fp and "{}" not in body:
            names.add(fp.group(1))
            continue
        last = re.findall(r"([A-Za-z_]\w*)\s*$", body)
        if last:
            names.add(last[0])
    # Enum constants.
    for m in re.finditer(r"\benum\b[^{;]*\{(.*?)\}", code, re.S):
        for c in re.finditer(r"(?:^|,)\s*([A-Za-z_]\w*)", m.group(1)):
            names.add(c.group(1))
    public = set()
    for n in names:
        if n.startswith(("weft__", "WEFT__")) or re.fullmatch(r"WEFT_\w+_H", n):
            continue
        if n.startswith(("weft_", "WEFT_")):
            public.add(n)
    return public


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    inc = os.path.join(root, "include", "weft")
    declared = set()
    all_idents = set()
    for h in sorted(os.listdir(inc)):
        if h.endswith(".h"):
            with open(os.path.join(inc, h), encoding="utf-8") as f:
                text = f.read()
            declared |= header_names(text)
            all_idents |= set(re.findall(r"[A-Za-z_]\w*", strip_comments(text)))
    with open(os.path.join(root, "docs", "api.md"), encoding="utf-8") as f:
        doc = f.read()
    doc_idents = set(re.findall(r"[A-Za-z_]\w*", doc))
    missing = sorted(declared - doc_idents)
    stale = set()
    for m in re.finditer(r"^#+ (.*)$", doc, re.M):
        for code in re.findall(r"`([^`]*)`", m.group(1)):
            for ident in re.findall(r"\b((?:weft|WEFT)_\w*)", code):
                if ident not in all_idents and not ident.startswith("weft/"):
                    stale.add(ident)
    ok = True
    if missing:
        ok = False
        print("docs/api.md does not mention these public names of include/weft/:")
        for n in missing:
            print("  " + n)
    if stale:
        ok = False
        print("docs/api.md has headings for names no header declares:")
        for n in sorted(stale):
            print("  " + n)
    if ok:
        print("docs/api.md names all %d public names of include/weft/" % len(declared))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
