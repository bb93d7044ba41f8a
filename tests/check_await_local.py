#!/usr/bin/env python3
"""A block-scope local kept across an await must not compile (docs/async.md,
rule 1). Compiles tests/good_await_local.c, which must build with
-Wall -Wextra -Wpedantic -Werror, and each BAD_* case of
tests/bad_await_local.c, which must fail with no warning flag given, with
the compiler's diagnostic for it. Prints TAP.

usage: check_await_local.py SOURCE_ROOT c|cpp COMPILER [ARGS...]
"""
import os
import re
import subprocess
import sys
import tempfile

root, lang, cc = sys.argv[1], sys.argv[2], sys.argv[3:]
tests = os.path.join(root, "tests")

# What each compiler says (async.h explains why these two mechanisms).
JUMP_C = r"switch jumps over variable initialization"                    # GCC, C
JUMP_CPP = r"jump to case label|cannot jump from switch statement"       # C++, both
UNINIT = r"(is|may be) uninitialized when used here"                     # Clang, C and C++


def compiler_id():
    out = subprocess.run(cc + ["--version"], capture_output=True, text=True).stdout
    return "clang" if "clang" in out else "gcc"


def expected(case, ident):
    """The diagnostic case `case` must produce, or None where this compiler
    cannot see it (then the case is skipped, as docs/async.md says)."""
    if case == "ASSIGNED_LATER":
        # No initializer for the jump to skip: only flow analysis sees it,
        # which GCC runs only when optimizing, and then as a warning.
        return UNINIT if ident == "clang" else None
    if lang == "cpp":
        return JUMP_CPP
    return UNINIT if ident == "clang" else JUMP_C


def compile_one(src, extra):
    std = ["-std=c11"] if lang == "c" else ["-x", "c++", "-std=c++20"]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = cc + std + ["-I", os.path.join(root, "include"), "-c", src, "-o", os.path.join(tmp, "x.o")] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


ident = compiler_id()
cases = ["TOP_LEVEL", "LOOP_COUNTER", "IN_BRANCH", "ASSIGNED_LATER"]
print("1..%d" % (1 + len(cases)))
failed = 0

rc, out = compile_one(os.path.join(tests, "good_await_local.c"), ["-Wall", "-Wextra", "-Wpedantic", "-Werror"])
if rc == 0:
    print("ok 1 - good_await_local.c compiles cleanly (%s, %s)" % (ident, lang))
else:
    failed += 1
    print("not ok 1 - good_await_local.c does not compile (%s, %s)" % (ident, lang))
    print("# " + out.replace("\n", "\n# "))

for n, case in enumerate(cases, start=2):
    want = expected(case, ident)
    if want is None:
        print("ok %d - BAD_%s # SKIP %s %s cannot see it" % (n, case, ident, lang))
        continue
    rc, out = compile_one(os.path.join(tests, "bad_await_local.c"), ["-DBAD_" + case])
    if rc != 0 and re.search(want, out):
        print("ok %d - BAD_%s rejected (%s, %s)" % (n, case, ident, lang))
    else:
        failed += 1
        print("not ok %d - BAD_%s: exit %d, wanted a failure matching /%s/ (%s, %s)" % (n, case, rc, want, ident, lang))
        print("# " + out.replace("\n", "\n# "))
sys.exit(1 if failed else 0)
