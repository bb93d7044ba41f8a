#!/usr/bin/env python3
"""tests/test_reuseport.py - examples/reuseport.c as 3 processes on one
127.0.0.1 port (SO_REUSEPORT): 300 connections, each answered with the
name of the process that accepted it; every process must answer some.
Prints TAP. Every wait is bounded; the processes are stopped at the end.

Usage: test_reuseport.py PATH_TO_reuseport
"""
import socket
import subprocess
import sys
import time

N_PROCS = 3
N_CONNS = 300
DEADLINE_S = 30


def start(binary, port, name):
    p = subprocess.Popen([binary, str(port), name], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # "listening PORT"; the process flushes it
    if not line.startswith("listening "):
        p.kill()
        raise RuntimeError("%s did not start: %r" % (name, line))
    return p, int(line.split()[1])


def main():
    binary = sys.argv[1]
    procs = []
    results = []
    try:
        p, port = start(binary, 0, "p0")
        procs.append(p)
        for i in range(1, N_PROCS):
            procs.append(start(binary, port, "p%d" % i)[0])
        results.append(("all %d processes listen on port %d" % (N_PROCS, port), True))
        counts = {}
        end = time.monotonic() + DEADLINE_S
        for _ in range(N_CONNS):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                data = b""
                while not data.endswith(b"\n") and time.monotonic() < end:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
            name = data.decode().strip()
            counts[name] = counts.get(name, 0) + 1
        results.append(("%d connections answered: %s" % (N_CONNS, sorted(counts.items())),
                        sum(counts.values()) == N_CONNS))
        results.append(("every process answered some",
                        all(counts.get("p%d" % i, 0) > 0 for i in range(N_PROCS))))
        results.append(("no unknown answer", set(counts) <= {"p%d" % i for i in range(N_PROCS)}))
    except Exception as e:  # a failure to start or connect is a failed test
        results.append(("ran without error: %r" % e, False))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    print("1..%d" % len(results))
    ok = True
    for i, (what, good) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if good else "not ok", i, what))
        ok = ok and good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
