#!/usr/bin/env python3
"""Drives examples/run_child (argv[1]) and prints TAP: lines stream with
their prefix as they arrive (the first line is seen before the child ends),
the exit code and a terminating signal are reported, and stdout through
the blocking pool keeps order and survives a large output."""
import subprocess
import sys
import time

exe = sys.argv[1]
results = []


def check(name, ok, detail=""):
    results.append((name, ok, detail))


# Order, prefix, exit code, a last line without its newline.
p = subprocess.run([exe, "echo one; echo two; printf three; exit 3"], capture_output=True, text=True, timeout=30)
check("lines and exit code", p.stdout == "[child] one\n[child] two\n[child] three\nexit code 3\n" and p.returncode == 3,
      repr(p.stdout) + " rc=%d" % p.returncode)

# Streaming: the first line arrives while the child still sleeps.
start = time.monotonic()
q = subprocess.Popen([exe, "echo early; sleep 1; echo late"], stdout=subprocess.PIPE, text=True)
first = q.stdout.readline()
t_first = time.monotonic() - start
rest = q.stdout.read()
q.wait(timeout=30)
check("streams as it arrives", first == "[child] early\n" and t_first < 0.9 and rest == "[child] late\nexit code 0\n",
      "first=%r after %.2fs rest=%r" % (first, t_first, rest))

# A child killed by a signal.
p = subprocess.run([exe, "echo before; kill -KILL $$"], capture_output=True, text=True, timeout=30)
check("signal reported", p.stdout == "[child] before\nexit signal 9\n" and p.returncode == 128 + 9,
      repr(p.stdout) + " rc=%d" % p.returncode)

# Many lines, in order.
p = subprocess.run([exe, "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done"], capture_output=True,
                   text=True, timeout=60)
want = "".join("[child] %d\n" % i for i in range(20000)) + "exit code 0\n"
check("20000 lines in order", p.stdout == want and p.returncode == 0, "got %d bytes" % len(p.stdout))

# Our stdout closed early (`run_child ... | head -1`): EPIPE, not SIGPIPE.
p = subprocess.run("%s 'yes | head -n 100000' | head -n 1" % exe, shell=True, capture_output=True, text=True,
                   timeout=60)
check("reader gone early", p.stdout == "[child] y\n", repr(p.stdout[:40]))

print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s%s" % ("ok" if ok else "not ok", i, name, "" if ok else " # " + detail))
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
