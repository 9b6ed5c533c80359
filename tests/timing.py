#!/usr/bin/env python3
"""Times failed logins in pairs, for tests/timing.bats.

  timing.py pairs HOST PORT N USER-A PASS-FILE-A USER-B PASS-FILE-B

Runs N pairs. Each pair is two connections, A and B, that send USER, then send
PASS together, just after the start of a second: Linux-PAM seeds its random
failure delay with the second in which a run began, so two runs begun in the
same second get the same delay, and what is left is the server's own
difference. Each side's time is from its PASS to the first byte of the reply.
Prints a line per pair ("pair 3: A 1002.1 ms, B 1001.8 ms, A-B +0.3 ms"),
then "median A-B: X ms". A password file holds the password on its first line
("" for an empty file).
"""
import socket
import statistics
import sys
import threading
import time


def password(path):
    with open(path) as f:
        return f.readline().rstrip("\n")


def line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise EOFError("connection closed after %r" % buf)
        buf += c
    return buf.decode("latin-1").rstrip("\r\n")


def attempt(host, port, user, pw, barrier, out, key):
    s = socket.create_connection((host, port), 30)
    try:
        if not line(s).startswith("+OK"):
            raise RuntimeError("no greeting")
        s.sendall(b"USER %s\r\n" % user.encode())
        if not line(s).startswith("+OK"):
            raise RuntimeError("USER refused")
        barrier.wait()
        t0 = time.perf_counter()
        s.sendall(b"PASS %s\r\n" % pw.encode())
        s.recv(1)
        t1 = time.perf_counter()
        rest = line(s)
        out[key] = ((t1 - t0) * 1000, rest)
    finally:
        s.close()


def next_second():
    time.sleep(1.01 - time.time() % 1)


def pairs(host, port, n, ua, pa, ub, pb):
    gaps = []
    for i in range(1, n + 1):
        # Connect and send USER; the barrier lets both PASS lines go just
        # after the next second starts.
        out = {}
        barrier = threading.Barrier(2, action=next_second, timeout=10)
        th = [threading.Thread(target=attempt,
                               args=(host, port, u, p, barrier, out, k))
              for k, u, p in (("A", ua, pa), ("B", ub, pb))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        if "A" not in out or "B" not in out:
            sys.exit("pair %d: an attempt failed" % i)
        for k in "AB":
            if not out[k][1].startswith("ERR"):
                sys.exit("pair %d: %s was answered %r, not -ERR" %
                         (i, k, "-" + out[k][1]))
        gap = out["A"][0] - out["B"][0]
        gaps.append(gap)
        print("pair %d: A %.1f ms, B %.1f ms, A-B %+.1f ms" %
              (i, out["A"][0], out["B"][0], gap), flush=True)
    print("median A-B: %.1f ms" % statistics.median(gaps))


def main():
    if len(sys.argv) != 9 or sys.argv[1] != "pairs":
        sys.exit(__doc__)
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pairs(host, port, n, sys.argv[5], password(sys.argv[6]),
          sys.argv[7], password(sys.argv[8]))


if __name__ == "__main__":
    main()
