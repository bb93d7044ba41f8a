#!/usr/bin/env python3
"""Drives the line-protocol server (examples/line_server.c) over 127.0.0.1
and prints TAP.

    test_line_server.py PATH/TO/line_server

Each test starts its own server on an ephemeral port (--port 0: the first
line on stdout names it) with --max-line 64, talks to it with plain
sockets, and stops it with a signal, checking that it exits 0. Every wait is
bounded (socket timeouts, process waits) and the server is killed if a test
fails, so the suite always ends by itself.

LINE_SERVER_TIME_SCALE multiplies every time limit (e.g. 10 under valgrind).
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

BIN = sys.argv[1]
SCALE = float(os.environ.get("LINE_SERVER_TIME_SCALE", "1"))
T = 5.0 * SCALE  # the longest any single read or connect may take
MAX_LINE = 64


class Server:
    def __init__(self):
        self.p = subprocess.Popen([BIN, "--port", "0", "--max-line", str(MAX_LINE)], stdout=subprocess.PIPE,
                                  text=True)
        ready, _, _ = select.select([self.p.stdout], [], [], 10 * SCALE)
        line = self.p.stdout.readline() if ready else ""
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.kill()
            raise AssertionError(f"no 'listening on' line, got {line!r}")
        self.port = int(m.group(1))

    def stop(self, signo=signal.SIGTERM):
        self.p.send_signal(signo)
        try:
            rc = self.p.wait(3 * SCALE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {3 * SCALE:.1f} s after signal {signo}")
        assert rc == 0, f"exit status {rc}"

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise AssertionError(f"connection closed (pending {self.buf[:80]!r})")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def ask(self, cmd):
        self.send(cmd + "\n")
        return self.line()

    def closed(self):
        """True once the server has closed the connection (nothing more comes)."""
        try:
            while True:
                data = self.s.recv(65536)
                if not data:
                    return self.buf == b""
                self.buf += data
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def commands(port):
    c = Client(port)
    assert c.ask("SET greeting hello there") == "OK"
    assert c.ask("GET greeting") == "VALUE hello there"
    assert c.ask("GET nothing") == "NOT_FOUND"
    assert c.ask("SET greeting again") == "OK"
    assert c.ask("GET greeting") == "VALUE again"
    assert c.ask("DEL greeting") == "DELETED"
    assert c.ask("DEL greeting") == "NOT_FOUND"
    assert c.ask("FROB x") == "ERR unknown command"
    assert c.ask("SET onlykey") == "ERR missing argument"
    assert c.ask("GET k\r") == "NOT_FOUND"  # "\r\n" line endings
    assert c.ask("") == "ERR unknown command"
    assert c.ask("QUIT") == "BYE"
    assert c.closed()
    c.close()


def pipelined(port):
    c = Client(port)
    # 200 commands in one send, split at an odd place; the replies come in order.
    reqs = []
    for i in range(100):
        reqs.append(f"SET k{i} v{i}\n")
        reqs.append(f"GET k{i}\n")
    data = "".join(reqs).encode()
    c.send(data[:1001])
    time.sleep(0.05)
    c.send(data[1001:])
    for i in range(100):
        assert c.line() == "OK"
        got = c.line()
        assert got == f"VALUE v{i}", got
    c.close()


def several_clients(port):
    clients = [Client(port) for _ in range(8)]
    errors = []

    def run(i, c):
        try:
            for j in range(50):
                assert c.ask(f"SET c{i}.{j} {i * 1000 + j}") == "OK"
            for j in range(50):
                assert c.ask(f"GET c{i}.{j}") == f"VALUE {i * 1000 + j}"
        except Exception as e:  # reported below
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10 * SCALE)
    assert not errors, errors
    # Each sees the others' keys.
    assert clients[0].ask("GET c7.49") == "VALUE 7049"
    for c in clients:
        c.close()


def long_line(port):
    c = Client(port)
    assert c.ask("SET a 1") == "OK"
    c.send("SET b " + "x" * 10000 + "\n")  # far past --max-line
    assert c.line() == "ERR line too long"
    assert c.closed()
    c.close()
    # A line of exactly --max-line bytes is fine; one more is not.
    c = Client(port)
    exact = "SET k " + "y" * (MAX_LINE - 6)
    assert len(exact) == MAX_LINE
    assert c.ask(exact) == "OK"
    assert c.ask(exact + "y") == "ERR line too long"
    assert c.closed()
    c.close()
    c = Client(port)
    assert c.ask("GET a") == "VALUE 1"  # the server goes on
    c.close()


def shutdown_with_clients(server):
    a, b = Client(server.port), Client(server.port)
    assert a.ask("SET x 1") == "OK"
    b.send("GET x")  # a partial line
    time.sleep(0.05)
    server.p.send_signal(signal.SIGTERM)
    assert a.line() == "BYE server shutting down"
    assert a.closed()
    assert b.line() == "BYE server shutting down"
    assert b.closed()
    rc = server.p.wait(3 * SCALE)
    assert rc == 0, f"exit status {rc}"


def main():
    tests = [commands, pipelined, several_clients, long_line]
    print(f"1..{len(tests) + 2}", flush=True)
    failed = 0
    n = 0
    for t in tests + [shutdown_with_clients, "sigint_idle"]:
        n += 1
        name = t if isinstance(t, str) else t.__name__
        server = None
        try:
            server = Server()
            if t == "sigint_idle":
                server.stop(signal.SIGINT)
            elif t == shutdown_with_clients:
                t(server)
            else:
                t(server.port)
                server.stop()
            print(f"ok {n} - {name}", flush=True)
        except Exception:
            failed += 1
            print(f"not ok {n} - {name}", flush=True)
            for part in traceback.format_exc().splitlines():
                print(f"# {part}")
        finally:
            if server:
                server.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
