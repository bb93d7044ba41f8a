#!/usr/bin/env python3
"""Drives the TCP proxy (examples/proxy.c) over 127.0.0.1 and prints TAP.

    test_proxy.py PATH/TO/proxy

Each test starts an upstream (a plain-socket server in a thread of this
script) and a proxy in front of it on an ephemeral port (the proxy's
first stdout line names it), talks through it with plain sockets and stops
it with SIGINT. Every wait is bounded (socket timeouts, process waits) and
the proxy is killed if a test fails, so the suite always ends by itself.
PROXY_TIME_SCALE multiplies every time limit (e.g. 10 under valgrind).
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
SCALE = float(os.environ.get("PROXY_TIME_SCALE", "1"))
T = 5.0 * SCALE


class Upstream:
    """Accepts connections; `mode` says what each one does:
    echo: echo every byte, and shut down when the client does;
    reply: read to end of stream, then answer b"got N" and close."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.threads = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            th = threading.Thread(target=self.serve, args=(c,), daemon=True)
            th.start()
            self.threads.append(th)

    def serve(self, c):
        c.settimeout(T)
        try:
            if self.mode == "echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        c.shutdown(socket.SHUT_WR)
                        break
                    c.sendall(d)
            else:
                n = 0
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    n += len(d)
                c.sendall(b"got %d" % n)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stopping = True
        self.t.join()
        self.sock.close()


class Proxy:
    def __init__(self, up_port, *args):
        self.p = subprocess.Popen([BIN, "127.0.0.1:0", "127.0.0.1:%d" % up_port, *args], stdout=subprocess.PIPE,
                                  text=True)
        ready, _, _ = select.select([self.p.stdout], [], [], 10 * SCALE)
        line = self.p.stdout.readline() if ready else ""
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.kill()
            raise AssertionError(f"no 'listening on' line, got {line!r}")
        self.port = int(m.group(1))

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=T)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(5 * SCALE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("proxy still running after SIGINT")
        assert rc == 0, f"exit status {rc}"

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def read_to_end(s):
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d


def test_round_trip():
    """1 MiB through the proxy to an echo upstream and back, both ways at once."""
    up = Upstream("echo")
    px = Proxy(up.port)
    try:
        c = px.connect()
        data = bytes((i * 7 + i // 300) & 0xFF for i in range(1 << 20))
        got = bytearray()

        def rd():
            got.extend(read_to_end(c))

        th = threading.Thread(target=rd)
        th.start()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)  # half-close: the echo ends, its FIN comes back
        th.join(T * 4)
        assert not th.is_alive(), "no end of stream came back"
        assert bytes(got) == data, f"{len(got)} bytes came back, want {len(data)}"
        c.close()
        px.stop()
    finally:
        px.kill()
        up.close()


def test_half_close():
    """The client's FIN reaches the upstream, whose answer still comes back."""
    up = Upstream("reply")
    px = Proxy(up.port)
    try:
        c = px.connect()
        c.sendall(b"x" * 12345)
        c.shutdown(socket.SHUT_WR)
        assert read_to_end(c) == b"got 12345"
        c.close()
        px.stop()
    finally:
        px.kill()
        up.close()


def test_cap():
    """--max-conns 2: a third client is refused (end of stream at once) while
    two are open; once one leaves, a new client gets through."""
    up = Upstream("echo")
    px = Proxy(up.port, "--max-conns", "2")
    try:
        a, b = px.connect(), px.connect()
        for s in (a, b):
            s.sendall(b"ping")
            assert s.recv(16) == b"ping"
        c = px.connect()
        assert read_to_end(c) == b"", "the third connection was served"
        c.close()
        a.close()
        deadline = time.monotonic() + T
        while True:  # the session ends once the upstream's FIN comes back
            d = px.connect()
            d.sendall(b"pong")
            try:
                if d.recv(16) == b"pong":
                    break
            except OSError:
                pass
            d.close()
            assert time.monotonic() < deadline, "no permit came back"
            time.sleep(0.05)
        d.close()
        b.close()
        px.stop()
    finally:
        px.kill()
        up.close()


def test_idle_timeout():
    """--idle-ms 300: a busy connection stays; a silent one is closed."""
    up = Upstream("echo")
    px = Proxy(up.port, "--idle-ms", "300")
    try:
        c = px.connect()
        for _ in range(6):  # 6 x 100 ms of traffic: longer than the limit in all
            time.sleep(0.1)
            c.sendall(b"k")
            assert c.recv(4) == b"k"
        t0 = time.monotonic()  # the last byte: silence from here
        assert read_to_end(c) == b"", "bytes after going idle"
        took = time.monotonic() - t0
        assert 0.25 <= took <= 3 * SCALE, f"closed after {took:.2f} s of silence"
        c.close()
        px.stop()
    finally:
        px.kill()
        up.close()


def test_upstream_refuses():
    """Nothing listens upstream: the client is closed."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # a port with no listener: connect is refused
    px = Proxy(port)
    try:
        c = px.connect()
        try:
            assert read_to_end(c) == b""
        except ConnectionResetError:
            pass
        c.close()
        px.stop()
    finally:
        px.kill()


TESTS = [test_round_trip, test_half_close, test_cap, test_idle_timeout, test_upstream_refuses]

if __name__ == "__main__":
    print(f"1..{len(TESTS)}")
    failed = 0
    for i, t in enumerate(TESTS, 1):
        try:
            t()
            print(f"ok {i} - {t.__name__}")
        except Exception:
            failed += 1
            print(f"not ok {i} - {t.__name__}")
            for line in traceback.format_exc().splitlines():
                print("# " + line)
    sys.exit(1 if failed else 0)
