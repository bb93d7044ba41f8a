#!/usr/bin/env python3
"""Drives examples/fs_copy: copies a 3 MiB file of random bytes and
checks the copy byte for byte; a missing source must fail with a message.
Usage: test_fs_copy.py PATH_TO_FS_COPY"""
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
    data = os.urandom(3 * 1024 * 1024 + 777)
    with open(src, "wb") as f:
        f.write(data)
    r = subprocess.run([exe, src, dst], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"copied {len(data)} bytes" in r.stdout, r.stdout
    assert "2 entries in the target directory" in r.stdout, r.stdout
    with open(dst, "rb") as f:
        assert f.read() == data, "the copy differs"
    r = subprocess.run([exe, os.path.join(d, "missing"), dst], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "fs_copy:" in r.stderr, (r.returncode, r.stderr)
print("fs_copy example: ok")
