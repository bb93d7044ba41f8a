#!/usr/bin/env python3
"""Drives the chat server (examples/chat.c) over 127.0.0.1 and prints TAP.

    test_chat.py PATH/TO/chat            the weft example (meson runs this)
    test_chat.py PATH/TO/tokio-chat      its Tokio twin: the same checks

Each test starts its own server on an ephemeral port (--port 0: the first
line on stdout names the port), talks to it with plain sockets, and stops
it. Every wait is bounded (socket timeouts, process waits) and the server is
killed if a test fails, so the suite always ends by itself.

CHAT_WRAPPER prefixes the server's command (e.g. "valgrind --leak-check=full
--error-exitcode=1 --errors-for-leak-kinds=definite,indirect") and
CHAT_TIME_SCALE multiplies every time limit (e.g. 10 under valgrind).
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import traceback

BIN = sys.argv[1]
WRAPPER = os.environ.get("CHAT_WRAPPER", "").split()
SCALE = float(os.environ.get("CHAT_TIME_SCALE", "1"))
T = 5.0 * SCALE  # the longest any single read or connect may take
BYE = "*** server shutting down"


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen(WRAPPER + [BIN, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.p.stdout], [], [], 10 * SCALE)
        line = self.p.stdout.readline() if ready else ""
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.kill()
            raise AssertionError(f"no 'listening on' line, got {line!r}")
        self.port = int(m.group(1))

    def stop(self, signo=signal.SIGINT, limit=3.0):
        """Sends signo; returns the exit status and how long the exit took."""
        t0 = time.monotonic()
        self.p.send_signal(signo)
        try:
            rc = self.p.wait(limit * SCALE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {limit * SCALE:.1f} s after signal {signo}")
        return rc, time.monotonic() - t0

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Client:
    def __init__(self, port, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(T)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""

    def welcome(self):
        """Reads the welcome line and returns the client's name."""
        m = re.fullmatch(r"welcome (guest\d+)", self.line())
        assert m, "no welcome line"
        return m.group(1)

    def line(self):
        while b"\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise AssertionError(f"connection closed (pending {self.buf[:80]!r})")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def rest(self):
        """Everything until the server closes the connection."""
        while True:
            try:
                data = self.s.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                rest, self.buf = self.buf.decode(errors="replace"), b""
                return rest
            self.buf += data

    def quiet(self, secs=0.2):
        """True if nothing arrives within secs."""
        if self.buf:
            return False
        ready, _, _ = select.select([self.s], [], [], secs)
        return not ready

    def close(self):
        self.s.close()


def connect_until_welcome(port, limit=2.0):
    """A new client, retried while the server still answers 'server full'
    (a closed client's session releases its permit a moment after)."""
    deadline = time.monotonic() + limit * SCALE
    while True:
        c = Client(port)
        first = c.line()
        if first.startswith("welcome "):
            return c, first.split()[1]
        assert first == "server full", first
        c.close()
        assert time.monotonic() < deadline, "the cap did not free up"
        time.sleep(0.02)


def lines_reach_every_other_client(port):
    a, b, c = Client(port), Client(port), Client(port)
    na, nb, nc = a.welcome(), b.welcome(), c.welcome()
    assert len({na, nb, nc}) == 3, "names are not unique"
    a.send("hello from a")
    assert b.line() == f"{na}: hello from a"
    assert c.line() == f"{na}: hello from a"
    b.s.sendall(b"hi, with CRLF\r\n")
    # a's next line is b's: its own line never came back to it.
    assert a.line() == f"{nb}: hi, with CRLF"
    assert c.line() == f"{nb}: hi, with CRLF"
    c.s.sendall(b"one\ntwo\nthr")  # two lines and a partial one in one write
    c.s.sendall(b"ee\n")
    for x in (a, b):
        assert [x.line(), x.line(), x.line()] == [f"{nc}: one", f"{nc}: two", f"{nc}: three"]
    assert a.quiet() and b.quiet() and c.quiet()
    for x in (a, b, c):
        x.close()


def slow_client_is_dropped_others_keep_receiving(port):
    # --max-clients 3: a probe gets a welcome only once the slow client's
    # session has ended, which is how the test sees the drop without reading.
    slow = Client(port, rcvbuf=4096)
    slow.welcome()
    a, b = Client(port), Client(port)
    na, _ = a.welcome(), b.welcome()
    payload = "x" * 400
    sent = 0
    dropped = False
    while not dropped:
        assert sent < 20000, "the slow client was never dropped"
        a.s.sendall(b"".join(f"{sent + i} {payload}\n".encode() for i in range(8)))
        for i in range(8):  # b keeps up: each burst is read before the next
            assert b.line() == f"{na}: {sent + i} {payload}"
        sent += 8
        if sent % 200 == 0:
            probe = Client(port)
            dropped = probe.line().startswith("welcome ")
            probe.close()
    got = slow.rest().count("\n")  # what reached it before it was dropped, then the end
    assert 0 < got < sent + 1, f"slow client got {got} of {sent + 1} lines"
    a.send("still here")
    assert b.line() == f"{na}: still here"
    a.close()
    b.close()
    return f"dropped after {sent} lines, it had received {got}"


def bursts_reach_readers_or_are_counted(port):
    # A burst within the broadcast ring (256) reaches every reader whole. A
    # longer one may outrun a forwarder: it then tells its client how many
    # lines it missed. Either way the readers stay connected.
    a, b, c = Client(port), Client(port), Client(port)
    na, _, _ = a.welcome(), b.welcome(), c.welcome()
    notes = []
    for n in (200, 3000):
        a.s.sendall(b"".join(f"burst {i}\n".encode() for i in range(n)))
        for x in (b, c):
            got, missed, last = 0, 0, -1
            while got + missed < n:
                line = x.line()
                m = re.fullmatch(r"\*\*\* missed (\d+) messages", line)
                if m:
                    missed += int(m.group(1))
                    continue
                m = re.fullmatch(rf"{na}: burst (\d+)", line)
                assert m and int(m.group(1)) > last, f"out of order: {line!r} after {last}"
                got, last = got + 1, int(m.group(1))
            assert got + missed == n, f"{got} + {missed} missed != {n}"
            assert n > 256 or missed == 0, f"{missed} of a {n}-line burst missed"
        notes.append(f"{n} lines: {got} received, {missed} missed")
    a.send("after the bursts")
    assert b.line() == f"{na}: after the bursts" and c.line() == f"{na}: after the bursts"
    for x in (a, b, c):
        x.close()
    return "; ".join(notes)


def connection_cap_is_enforced(port):
    a, b = Client(port), Client(port)
    a.welcome()
    nb = b.welcome()
    c = Client(port)
    assert c.line() == "server full"
    assert c.rest() == ""
    a.close()  # frees a slot
    d, nd = connect_until_welcome(port)
    d.send("in at last")
    assert b.line() == f"{nd}: in at last"
    b.send("welcome")
    assert d.line() == f"{nb}: welcome"
    b.close()
    d.close()


def disconnects_are_handled(port):
    a, b, c, d = Client(port), Client(port), Client(port), Client(port)
    na, _, _, _ = a.welcome(), b.welcome(), c.welcome(), d.welcome()
    c.close()  # a clean close
    d.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    d.close()  # a reset
    for i in range(20):
        a.send(f"after {i}")
        assert b.line() == f"{na}: after {i}"
    e, ne = connect_until_welcome(port)  # the cap (4) has room again
    e.send("new")
    assert a.line() == f"{ne}: new" and b.line() == f"{ne}: new"
    for x in (a, b, e):
        x.close()


def long_line_drops_its_client(port):
    a, b = Client(port), Client(port)
    na, _ = a.welcome(), b.welcome()
    longest = "y" * 511  # 511 bytes + "\n" fill the 512-byte limit
    a.send(longest)
    assert b.line() == f"{na}: {longest}"
    a.send("z" * 512)  # one byte too many
    assert a.rest() == ""
    assert b.quiet()
    c, nc = connect_until_welcome(port)
    c.send("ok")
    assert b.line() == f"{nc}: ok"
    b.close()
    c.close()


def shutdown(signo):
    def run(server):
        a, b, idle = Client(server.port), Client(server.port), Client(server.port)
        a.welcome(), b.welcome(), idle.welcome()  # idle never reads again
        a.send("last words")
        assert b.line().endswith(": last words")
        rc, secs = server.stop(signo)
        assert rc == 0, f"exit status {rc}"
        assert a.rest() == BYE + "\n", "a got no goodbye"
        assert b.rest() == BYE + "\n", "b got no goodbye"
        assert idle.rest().endswith(BYE + "\n")
        try:
            Client(server.port)
            raise AssertionError("still accepting after the signal")
        except (ConnectionRefusedError, ConnectionResetError):
            pass
        return f"exited 0 in {secs * 1000:.0f} ms"
    return run


TESTS = [
    ("lines_reach_every_other_client", (), lines_reach_every_other_client),
    ("slow_client_is_dropped_others_keep_receiving", ("--max-clients", "3"), slow_client_is_dropped_others_keep_receiving),
    ("bursts_reach_readers_or_are_counted", (), bursts_reach_readers_or_are_counted),
    ("connection_cap_is_enforced", ("--max-clients", "2"), connection_cap_is_enforced),
    ("disconnects_are_handled", ("--max-clients", "4"), disconnects_are_handled),
    ("long_line_drops_its_client", ("--max-clients", "2"), long_line_drops_its_client),
    ("sigint_says_goodbye_and_exits_0", (), shutdown(signal.SIGINT)),
    ("sigterm_says_goodbye_and_exits_0", (), shutdown(signal.SIGTERM)),
]


def main():
    only = os.environ.get("CHAT_ONLY")
    tests = [t for t in TESTS if not only or t[0] == only]
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, (name, args, fn) in enumerate(tests, 1):
        server = None
        try:
            server = Server(*args)
            if fn.__name__ == "run":  # the shutdown tests stop the server themselves
                note = fn(server)
            else:
                note = fn(server.port)
                rc, _ = server.stop()
                assert rc == 0, f"exit status {rc} after SIGINT"
            print(f"ok {i} - {name}" + (f" # {note}" if note else ""), flush=True)
        except Exception as e:  # noqa: BLE001 - any failure is this test's
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in traceback.format_exception(e):
                for part in line.rstrip().splitlines():
                    print(f"# {part}")
        finally:
            if server is not None:
                server.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
