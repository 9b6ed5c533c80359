#!/usr/bin/env python3
"""Two sessions of one user at once, each a real handler process on pipes,
interleaved as a scenario says, for tests/concurrent.bats.

    python3 tests/twosessions.py SCENARIO ORIG APPEND LOG -- COMMAND...

COMMAND starts one session (the handler with its environment, as
tests/drive.bash builds it); it is run twice. ORIG is a copy of the mailbox
as it was before either session, which every RETR is checked against: the
message sent must be, byte for byte, the one that had that number at login.
APPEND, when not "-", is a shell command that delivers mail (run where the
scenario says). Both sessions' stderr (their logs) is appended to LOG. Each
session logs in as alice/secret. Scenarios:

  before-retr       B deletes 1-10 and quits; then A, logged in before B,
                    deletes 11-20 and finds 1-10 gone
  before-quit       A deletes 1-10; B deletes 11-20 and quits; A quits
  same-quit         A deletes 1-10, B 11-20; both QUITs sent together
  same-messages     A and B both delete 1-10, B quits first
  half-second       the issue's table: A deletes 1-10, B starts 0.5 s later
                    and deletes 11-20, each RETR then DELE, then QUIT, both
                    running at once (0.1 s between messages, so that B
                    logs in before A quits and both number from ORIG)
  twice             B deletes 1-5 and quits, A looks; another B deletes
                    6-10 and quits; A deletes 11-20 (two remaps in one
                    session)
  arrival           B deletes 1-10 and quits, then APPEND delivers; A
                    deletes 11-20, sees none of the new mail, and quits

Prints what went wrong, one line each, and exits 1; or prints "ok" and the
number of messages each QUIT left, and exits 0.
"""

import re
import subprocess
import sys
import threading
import time


def messages(path):
    """The wire form of each message of an mbox (README's definition:
    From_ at the start or after an empty line), as lists of lines."""
    data = open(path, "rb").read()
    starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", data)]
    out = []
    for i, s in enumerate(starts):
        e = starts[i + 1] - 1 if i + 1 < len(starts) else len(data)
        body = data[data.index(b"\n", s) + 1:e]
        if body.endswith(b"\n"):
            body = body[:-1]
        out.append([l[:-1] if l.endswith(b"\r") else l
                    for l in body.split(b"\n")])
    return out


class Session:
    def __init__(self, name, command, log):
        self.name = name
        self.p = subprocess.Popen(command, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log)
        self.line()

    def line(self):
        l = self.p.stdout.readline()
        if not l.endswith(b"\r\n"):
            raise RuntimeError("%s: connection closed (%r)" % (self.name, l))
        return l[:-2]

    def send(self, text):
        self.p.stdin.write(text.encode() + b"\r\n")
        self.p.stdin.flush()

    def cmd(self, text):
        self.send(text)
        return self.line()

    def multi(self, text):
        first = self.cmd(text)
        if not first.startswith(b"+OK"):
            return first, None
        lines = []
        while True:
            l = self.line()
            if l == b".":
                return first, lines
            lines.append(l[1:] if l.startswith(b".") else l)

    def login(self):
        self.cmd("USER alice")
        r = self.cmd("PASS secret")
        if not r.startswith(b"+OK"):
            raise RuntimeError("%s: login: %r" % (self.name, r))
        _, self.uidl = self.multi("UIDL")

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(10)


def take(s, orig, numbers, errors, pace=0, shift=0):
    """RETR each message, check it against ORIG (message n of this session
    being ORIG's n + shift), DELE it; pace seconds between messages."""
    for n in numbers:
        time.sleep(pace)
        first, lines = s.multi("RETR %d" % n)
        if lines is None:
            errors.append("%s: RETR %d: %r" % (s.name, n, first))
            continue
        if lines != orig[n - 1 + shift]:
            errors.append("%s: RETR %d sent other bytes than message %d"
                          % (s.name, n, n + shift))
        r = s.cmd("DELE %d" % n)
        if not r.startswith(b"+OK"):
            errors.append("%s: DELE %d: %r" % (s.name, n, r))


def quit(s, errors, left):
    r = s.cmd("QUIT")
    m = re.match(rb"\+OK .*\((\d+) messages? left\)", r)
    if not m:
        errors.append("%s: QUIT: %r" % (s.name, r))
    else:
        left[s.name] = int(m.group(1))


def check_gone(s, numbers, errors):
    """The messages another session removed: out of UIDL, -ERR for RETR,
    and the ids of the rest as they were at login."""
    _, now = s.multi("UIDL")
    gone = {b"%d" % n for n in numbers}
    want = [l for l in s.uidl if l.split(b" ")[0] not in gone]
    if now != want:
        errors.append("%s: UIDL after the other QUIT: %r, not %r"
                      % (s.name, now[:3], want[:3]))
    for n in numbers[:2]:
        r = s.cmd("RETR %d" % n)
        if r != b"-ERR Message %d was removed by another session" % n:
            errors.append("%s: RETR %d of a removed message: %r"
                          % (s.name, n, r))


def main(argv):
    scenario, orig_path, append = argv[1], argv[2], argv[3]
    log = open(argv[4], "ab")
    command = argv[argv.index("--") + 1:]
    orig = messages(orig_path)
    errors, left = [], {}
    first, second = list(range(1, 11)), list(range(11, 21))
    a = Session("A", command, log)
    a.login()
    if scenario in ("before-retr", "arrival"):
        b = Session("B", command, log)
        b.login()
        take(b, orig, first, errors)
        quit(b, errors, left)
        if scenario == "arrival":
            subprocess.run(append, shell=True, check=True)
        check_gone(a, first, errors)
        take(a, orig, second, errors)
        if scenario == "arrival":
            r = a.cmd("STAT")
            if not r.startswith(b"+OK %d " % (len(orig) - 20)):
                errors.append("A: STAT after the delivery: %r" % r)
        quit(a, errors, left)
    elif scenario == "twice":
        b = Session("B", command, log)
        b.login()
        take(b, orig, list(range(1, 6)), errors)
        quit(b, errors, left)
        b.close()
        check_gone(a, list(range(1, 6)), errors)
        b = Session("C", command, log)
        b.login()
        take(b, orig, list(range(1, 6)), errors, shift=5)
        quit(b, errors, left)
        check_gone(a, first, errors)
        take(a, orig, second, errors)
        quit(a, errors, left)
    elif scenario == "before-quit":
        take(a, orig, first, errors)
        b = Session("B", command, log)
        b.login()
        take(b, orig, second, errors)
        quit(b, errors, left)
        quit(a, errors, left)
    elif scenario == "same-quit":
        take(a, orig, first, errors)
        b = Session("B", command, log)
        b.login()
        take(b, orig, second, errors)
        a.send("QUIT")
        b.send("QUIT")
        for s in (a, b):
            r = s.line()
            m = re.match(rb"\+OK .*\((\d+) messages? left\)", r)
            if not m:
                errors.append("%s: QUIT: %r" % (s.name, r))
            else:
                left[s.name] = int(m.group(1))
    elif scenario == "same-messages":
        take(a, orig, first, errors)
        b = Session("B", command, log)
        b.login()
        take(b, orig, first, errors)
        quit(b, errors, left)
        quit(a, errors, left)
    elif scenario == "half-second":
        b = [None]

        def run_b():
            time.sleep(0.5)
            b[0] = Session("B", command, log)
            b[0].login()
            take(b[0], orig, second, errors, 0.1)
            quit(b[0], errors, left)
        t = threading.Thread(target=run_b)
        t.start()
        take(a, orig, first, errors, 0.1)
        quit(a, errors, left)
        t.join()
        b = b[0]
    else:
        sys.stderr.write(__doc__)
        return 2
    a.close()
    b.close()
    for e in errors:
        print(e)
    if errors:
        return 1
    print("ok", " ".join("%s=%d" % kv for kv in sorted(left.items())))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except RuntimeError as e:
        print(e)
        sys.exit(1)
