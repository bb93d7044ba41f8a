#!/usr/bin/env python3
"""Counts the lines of code of C and Rust files: lines that are neither
blank nor comment only. Comments are /* ... */ (C) and // ... (both, Rust's
//! and /// included); a line holding code and a comment counts as code.
String literals are not parsed: a comment marker inside a string would be
taken for a comment (none of the counted files has one).

    count_lines.py FILE...       one count per file, then the ratio of the
                                 first to the second when there are two

A C file whose sections open with a "/* ---- name ----" comment line also
gets a count per section (what comes before the first heading is counted
as "(top)"). Used for examples/chat.c against tokio-chat.rs (docs/chat.md).
"""
import re
import sys


def code_lines(text):
    """Yields (line, is_code) for each line of text."""
    in_block = False
    for line in text.splitlines():
        rest, code = line, ""
        while rest:
            if in_block:
                end = rest.find("*/")
                if end < 0:
                    rest = ""
                else:
                    rest, in_block = rest[end + 2:], False
                continue
            m = re.search(r"/\*|//", rest)
            if m is None:
                code, rest = code + rest, ""
            elif m.group() == "//":
                code, rest = code + rest[:m.start()], ""
            else:
                code, rest, in_block = code + rest[:m.start()], rest[m.end():], True
        yield line, bool(code.strip())


def main(paths):
    totals = []
    for path in paths:
        sections, name = {}, "(top)"
        with open(path, encoding="utf-8") as f:
            for line, is_code in code_lines(f.read()):
                heading = re.match(r"/\* ---- (.*?) -+", line)
                if heading:
                    name = heading.group(1)
                sections[name] = sections.get(name, 0) + is_code
        total = sum(sections.values())
        totals.append(total)
        print(f"{total:5d}  {path}")
        if len(sections) > 1:
            for name, n in sections.items():
                print(f"{n:11d}  {name}")
    if len(totals) == 2 and totals[1]:
        print(f"ratio {totals[0] / totals[1]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: count_lines.py FILE...")
    main(sys.argv[1:])
