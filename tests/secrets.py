#!/usr/bin/env python3
"""Looks into a running handler, for tests/secrets.bats.

  secrets.py scan NEEDLES USER PASS-FILE HANDLER [ARG...]
      Starts the handler on a socket pair, logs in with USER/PASS, and
      counts each line of the file NEEDLES (a password hash, a password) in
      the session's writable memory (/proc/PID/mem; needs root). Prints
      "needle N: C" for each, then QUITs.
  secrets.py process HANDLER [ARG...]
      Starts the handler, waits for the greeting, and prints the process's
      "core LIMIT" (soft limit from /proc/PID/limits) and "owner UID:GID"
      (of /proc/PID/status, root's for a process that is not dumpable), then
      QUITs.
"""
import os
import re
import socket
import subprocess
import sys
import time


def start(argv):
    a, b = socket.socketpair()
    p = subprocess.Popen(argv, stdin=b, stdout=b, stderr=subprocess.DEVNULL)
    b.close()
    f = a.makefile("rwb", 0)
    if not f.readline().startswith(b"+OK"):
        sys.exit("no greeting")
    return p, f


def say(f, line):
    f.write(line.encode() + b"\r\n")
    return f.readline().decode("latin-1").rstrip("\r\n")


def scan(pid, needles):
    counts = [0] * len(needles)
    mem = open("/proc/%d/mem" % pid, "rb", 0)
    for m in open("/proc/%d/maps" % pid):
        f = m.split()
        if "w" not in f[1]:
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        for i, n in enumerate(needles):
            counts[i] += len(re.findall(re.escape(n), data))
    return counts


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "scan":
        needles = [l.rstrip(b"\n") for l in open(sys.argv[2], "rb") if l.strip()]
        user = sys.argv[3]
        pw = open(sys.argv[4]).readline().rstrip("\n")
        p, f = start(sys.argv[5:])
        say(f, "USER " + user)
        r = say(f, "PASS " + pw)
        if not r.startswith("+OK"):
            sys.exit("PASS: " + r)
        time.sleep(0.2)
        for i, c in enumerate(scan(p.pid, needles)):
            print("needle %d: %d" % (i + 1, c))
        say(f, "QUIT")
        p.wait()
    elif len(sys.argv) >= 3 and sys.argv[1] == "process":
        p, f = start(sys.argv[2:])
        for l in open("/proc/%d/limits" % p.pid):
            if l.startswith("Max core file size"):
                print("core", l.split()[4])
        st = os.stat("/proc/%d/status" % p.pid)
        print("owner %d:%d" % (st.st_uid, st.st_gid))
        say(f, "QUIT")
        p.wait()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
