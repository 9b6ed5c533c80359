#!/usr/bin/env python3
"""Interactive driver for one pop3-handler session, for tests that must act
between two commands (APOP with the greeting's timestamp, changing the
mailbox between login and QUIT, waiting for the idle timeout).

    python3 tests/pop3drive.py [--raw FILE] COMMAND [ARGS...] < script

COMMAND is the full handler command line (tests/drive.bash's pop3_drive
builds it the way helpers.bash's pop3_run does, RUNAS prefix included).  The
driver reads the greeting, then runs the script, one action per line:

  C: text         send "text" CRLF and read the reply: one line, or a whole
                  multi-line reply (up to ".") for a +OK to CAPA, RETR, TOP,
                  or LIST/UIDL without argument
  S: text         send "text" as is, no CRLF added, backslash escapes
                  (\\r \\n \\x00 ...) decoded; reads nothing
  R:              read one reply line
  M:              read one multi-line reply (first line; if +OK, up to ".")
  A: user secret  send APOP user md5(<greeting timestamp> secret), read reply
  D: N user secret  the same with hex digit N (0-31) of the digest changed,
                  and only that one: a digest right but for that digit
  K: user secret  send AUTH CRAM-MD5, read the "+ " challenge, answer with
                  user and HMAC-MD5(secret, challenge), read the reply
  ! command       run "command" with bash -c and wait; its output goes to
                  stderr; a non-zero status prints "! exit N" on stdout;
                  $HANDLER_PID is the pid of the command the driver started
                  (env and setpriv exec it, so it is the handler's)
  # comment, or an empty line: ignored

At the end of the script the driver closes the handler's stdin, prints
whatever the handler still sends until it closes stdout, and exits with the
handler's exit status.  Every reply line goes to stdout with its CR removed,
so bats' $lines is the server side of the transcript; --raw FILE gets the
bytes exactly as received.  A reply that does not come within 20 s prints
"pop3drive: timeout" and exits 124.
"""

import base64
import codecs
import hashlib
import hmac
import os
import re
import select
import subprocess
import sys
import time

TIMEOUT = 20.0
MULTI = {"CAPA", "RETR", "TOP"}


class Timeout(Exception):
    pass


class Session:
    def __init__(self, argv, raw):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, bufsize=0)
        self.buf = b""
        self.eof = False
        self.raw = raw

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        r, _, _ = select.select([self.p.stdout], [], [], left)
        if not r:
            raise Timeout()
        data = os.read(self.p.stdout.fileno(), 1 << 16)
        if not data:
            self.eof = True
        else:
            if self.raw:
                self.raw.write(data)
            self.buf += data

    def line(self):
        """Returns one line without its line end, or None at EOF."""
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    l, self.buf = self.buf, b""
                    return l
                return None
            self._fill(deadline)
        l, self.buf = self.buf.split(b"\n", 1)
        return l[:-1] if l.endswith(b"\r") else l

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            pass


def out(l):
    sys.stdout.buffer.write(l + b"\n")
    sys.stdout.buffer.flush()


def reply(s, multi):
    l = s.line()
    if l is None:
        return None
    out(l)
    if multi and l.startswith(b"+OK"):
        while True:
            l = s.line()
            if l is None:
                return None
            out(l)
            if l == b".":
                break
    return l


def is_multi(cmd):
    w = cmd.split()
    if not w:
        return False
    k = w[0].upper()
    return k in MULTI or (k in ("LIST", "UIDL") and len(w) == 1)


def main():
    args = sys.argv[1:]
    raw = None
    if args[:1] == ["--raw"]:
        raw = open(args[1], "wb")
        args = args[2:]
    script = sys.stdin.read().splitlines()
    s = Session(args, raw)
    try:
        greeting = s.line()
        if greeting is None:
            out(b"pop3drive: no greeting")
        else:
            out(greeting)
        for act in script:
            if not act.strip() or act.startswith("#"):
                continue
            if act.startswith("C:"):
                cmd = act[2:].strip()
                s.send(cmd.encode() + b"\r\n")
                reply(s, is_multi(cmd))
            elif act.startswith("S:"):
                data = codecs.decode(act[2:].lstrip(), "unicode_escape")
                s.send(data.encode("latin-1"))
            elif act.startswith("R:"):
                reply(s, False)
            elif act.startswith("M:"):
                reply(s, True)
            elif act.startswith("A:") or act.startswith("D:"):
                wrong = -1
                if act.startswith("D:"):
                    wrong, act = act[2:].split(None, 1)
                    wrong, act = int(wrong), "A: " + act
                user, secret = act[2:].split(None, 1)
                m = re.search(rb"<[^>]*>", greeting or b"")
                ts = m.group(0) if m else b""
                digest = hashlib.md5(ts + secret.encode()).hexdigest()
                if wrong >= 0:
                    d = "0123456789abcdef"
                    digest = (digest[:wrong] +
                              d[(d.index(digest[wrong]) + 1) % 16] +
                              digest[wrong + 1:])
                s.send(b"APOP " + user.encode() + b" " + digest.encode() + b"\r\n")
                reply(s, False)
            elif act.startswith("K:"):
                user, secret = act[2:].split(None, 1)
                s.send(b"AUTH CRAM-MD5\r\n")
                l = reply(s, False)
                if l is None or not l.startswith(b"+ "):
                    continue
                ch = base64.b64decode(l[2:])
                digest = hmac.new(secret.encode(), ch, "md5").hexdigest()
                s.send(base64.b64encode(user.encode() + b" " +
                                        digest.encode()) + b"\r\n")
                reply(s, False)
            elif act.startswith("!"):
                env = dict(os.environ, HANDLER_PID=str(s.p.pid))
                rc = subprocess.call(["bash", "-c", act[1:].strip()],
                                     stdout=sys.stderr, env=env)
                if rc != 0:
                    out(b"! exit %d" % rc)
            else:
                out(b"pop3drive: bad script line: " + act.encode())
                s.p.kill()
                return 2
        try:
            s.p.stdin.close()
        except BrokenPipeError:
            pass
        while True:
            l = s.line()
            if l is None:
                break
            out(l)
        return s.p.wait(timeout=TIMEOUT)
    except (Timeout, subprocess.TimeoutExpired):
        out(b"pop3drive: timeout")
        s.p.kill()
        s.p.wait()
        return 124
    finally:
        if raw:
            raw.close()


if __name__ == "__main__":
    sys.exit(main())
