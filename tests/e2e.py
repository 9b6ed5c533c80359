#!/usr/bin/env python3
"""Client-side helpers for tests/root.bats (python3 stdlib only).

    e2e.py compare {exact|lf|fetchmail} EXPECTDIR GOTDIR [--unordered]
        GOTDIR/i must hold message i as the generator's --split wrote it
        (EXPECTDIR/i), for every i there, and GOTDIR no other numbered file;
        with --unordered (a maildir's new/), the files of GOTDIR, whatever
        their names, must be the expected messages in some order. Each is
        compared after the named client's normalization:
          exact      byte for byte (curl, poplib)
          lf         every CRLF stored as LF (mpop)
          fetchmail  as lf; a message with no header/body separator gets the
                     empty line fetchmail adds; a line longer than fetchmail's
                     8 KiB buffer comes back cut into pieces, each ended by
                     NUL, one octet and LF: those three octets are taken out
          getmail    as lf; a message with no header/body separator gets the
                     empty line getmail6 adds (long lines come back whole)
        Nothing else is forgiven, so one wrong octet in any message fails.

    e2e.py poplib HOST PORT USER PASSFILE EXPECTDIR
        Logs in with USER/PASS and checks STAT, LIST, UIDL and RETR of every
        message against EXPECTDIR; the RETR lines are joined with CRLF.

    e2e.py whoami HOST PORT USER PASSFILE PARENTPID
        Logs in, finds the handler (the child of PARENTPID serving us) in
        /proc and prints its "Uid:", "Gid:" and "Groups:" lines, then QUITs.

    e2e.py dele HOST PORT USER PASSFILE MSG...
        Logs in, DELEs each MSG, QUITs, and prints the QUIT reply.

    e2e.py pass HOST PORT USER PASSFILE
        Logs in and prints the PASS reply (or the error), then QUITs.

    e2e.py stls-refuse HOST PORT USER
        Against stunnel's "protocol = pop3": prints the greeting, "CAPA: "
        and the capabilities offered before STLS, then sends USER and prints
        "USER: connection closed" if that is all that comes back.

    e2e.py mkmsgs DIR N TAG
        Writes N messages (RFC 5322, LF line ends, no From_ line) as
        DIR/1..DIR/N for an MDA to deliver, each with the unique Message-ID
        <TAG.I@concurrent.test> and a body of varied length.

    e2e.py union {exact|lf|fetchmail} EXPECTDIR GOTDIR...
        Clients that fetched from one mailbox at once: every expected
        message is in at least one GOTDIR, and every numbered file there is
        one of them, after the client's normalization.

    e2e.py drain HOST PORT USER PASSFILE SRCDIR OUT STOPFILE MINSESSIONS [PART PARTS]
        Runs sessions one after another until STOPFILE exists and at least
        MINSESSIONS have run. Each logs in, RETRs every message (with PART
        and PARTS: those whose UIDL's SHA-1 is PART modulo PARTS, one
        client's share), checks it byte for byte against the SRCDIR file
        its Message-ID names, DELEs them all and QUITs. When QUIT says +OK, the Message-IDs it deleted
        are appended to OUT, one a line. Prints one summary line: sessions
        run, QUITs answered +OK (committed), those that deleted mail
        (deleting), messages deleted, logins refused, sessions cut off
        before QUIT (aborted), QUITs answered -ERR.

    e2e.py append SPOOL FILE...
        A delivery agent: appends each FILE to the mbox SPOOL with a From_
        line and the separating empty line, under an fcntl lock and the
        dotlock SPOOL.lock (dotlockfile), taken as Debian Policy 11.6 says:
        fcntl first, both without blocking; when the dotlock is busy the
        fcntl lock is let go before the next try.

    e2e.py concurrent-check SRCDIR SPOOL OUT...
        Every message of SRCDIR must be either in SPOOL (an mbox) or in one
        of the OUT files, exactly once in all; nothing else may be there.

A failure prints what differs and exits 1.
"""

import fcntl
import hashlib
import os
import poplib
import random
import re
import socket
import subprocess
import sys
import time

# The generator writes lines of more than 64 KiB; poplib's default cap is 2 KiB.
poplib._MAXLINE = 1 << 24


def load(path):
    with open(path, "rb") as f:
        return f.read()


def expected(expdir):
    n = len([x for x in os.listdir(expdir) if x.isdigit()])
    return [load(os.path.join(expdir, str(i))) for i in range(1, n + 1)]


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def normalize(mode, msg):
    if mode == "exact":
        return msg
    msg = msg.replace(b"\r\n", b"\n")
    if mode in ("fetchmail", "getmail"):
        if b"\n\n" not in msg:
            msg += b"\n"
    return msg


def unfetchmail(got):
    """Joins the pieces fetchmail 6.4 cuts a line longer than its 8 KiB buffer
    into: each piece but the last is about 8 KiB of the line followed by NUL,
    one more octet (it varies) and LF."""
    out = []
    for piece in got.split(b"\n"):
        if out and out[-1][1]:
            out[-1] = (out[-1][0] + piece, False)
        else:
            out.append((piece, False))
        line = out[-1][0]
        if len(piece) > 8000 and piece[-2:-1] == b"\x00":
            out[-1] = (line[:-2], True)
    return b"\n".join(l for l, _ in out)


def message_id(msg):
    for line in msg.split(b"\n"):
        if line.strip() == b"":
            return None
        if line.lower().startswith(b"message-id:"):
            return line.strip()
    return None


def union(mode, expdir, gotdirs):
    """Two clients that fetched from one mailbox at once: every expected
    message stored by at least one of them, and every file they stored one
    of the expected messages, intact."""
    exp = {normalize(mode, e) for e in expected(expdir)}
    seen, bad, stored = set(), 0, 0
    for d in gotdirs:
        for n in sorted(os.listdir(d)):
            if not n.isdigit():
                continue
            stored += 1
            g = load(os.path.join(d, n))
            if mode == "fetchmail":
                g = unfetchmail(g)
            if g not in exp:
                print("%s/%s: not one of the messages (%r)" % (d, n, message_id(g)))
                bad += 1
            seen.add(g)
    for e in exp - seen:
        print("lost: %r" % message_id(e))
        bad += 1
    print("%d messages, %d stored by the clients in all, %d problems"
          % (len(exp), stored, bad))
    return 1 if bad else 0


def compare_unordered(mode, expdir, gotdir):
    exp = expected(expdir)
    names = sorted(os.listdir(gotdir))
    got = {}
    for n in names:
        g = load(os.path.join(gotdir, n))
        if mode == "fetchmail":
            g = unfetchmail(g)
        got.setdefault(g, []).append(n)
    bad = 0
    if len(names) != len(exp):
        print("client stored %d messages, expected %d" % (len(names), len(exp)))
        bad += 1
    for i, e in enumerate(exp, 1):
        want = normalize(mode, e)
        if got.get(want):
            got[want].pop()
            continue
        bad += 1
        mid = message_id(want)
        near = [(g, ns) for g, ns in got.items() if ns and mid and message_id(g) == mid]
        if not near:
            print("message %d: no stored file holds it (%r)" % (i, mid))
            continue
        g, ns = near[0]
        j = first_diff(want, g)
        print("message %d (%s): %d octets, expected %d; first difference at %d:"
              % (i, ns[0], len(g), len(want), j))
        print("  expected %r" % want[max(0, j - 30):j + 30])
        print("  got      %r" % g[max(0, j - 30):j + 30])
    if bad:
        print("%d of %d messages differ" % (bad, len(exp)))
        return 1
    print("%d messages identical (%s, in some order)" % (len(exp), mode))
    return 0


def compare(mode, expdir, gotdir):
    exp = expected(expdir)
    bad = 0
    stored = len([x for x in os.listdir(gotdir) if x.isdigit()])
    if stored != len(exp):
        print("client stored %d messages, expected %d" % (stored, len(exp)))
        bad += 1
    for i, e in enumerate(exp, 1):
        f = os.path.join(gotdir, str(i))
        if not os.path.exists(f):
            print("message %d: not stored (%s)" % (i, f))
            bad += 1
            continue
        want = normalize(mode, e)
        got = load(f)
        if mode == "fetchmail":
            got = unfetchmail(got)
        if got == want:
            continue
        bad += 1
        j = first_diff(want, got)
        print("message %d (%s): %d octets, expected %d; first difference at %d:"
              % (i, f, len(got), len(want), j))
        print("  expected %r" % want[max(0, j - 30):j + 30])
        print("  got      %r" % got[max(0, j - 30):j + 30])
    if bad:
        print("%d of %d messages differ" % (bad, len(exp)))
        return 1
    print("%d messages identical (%s)" % (len(exp), mode))
    return 0


def login(host, port, user, passfile):
    p = poplib.POP3(host, int(port), timeout=60)
    p.user(user)
    with open(passfile) as f:
        pw = f.read().strip()
    resp = p.pass_(pw)
    return p, resp


def check_poplib(host, port, user, passfile, expdir):
    exp = expected(expdir)
    p, resp = login(host, port, user, passfile)
    bad = []
    total = sum(len(e) for e in exp)
    want = b"+OK maildrop has %d messages (%d octets)" % (len(exp), total)
    if resp != want:
        bad.append("PASS reply %r, expected %r" % (resp, want))
    if p.stat() != (len(exp), total):
        bad.append("STAT %r, expected %r" % (p.stat(), (len(exp), total)))
    resp, listing, _ = p.list()
    want = [b"%d %d" % (i, len(e)) for i, e in enumerate(exp, 1)]
    if listing != want:
        bad.append("LIST %r, expected %r" % (listing, want))
    resp, uidls, _ = p.uidl()
    uids = [u.split(b" ", 1)[1] for u in uidls]
    if [u.split(b" ", 1)[0] for u in uidls] != [b"%d" % i for i in range(1, len(exp) + 1)]:
        bad.append("UIDL numbers %r" % uidls)
    if len(set(uids)) != len(uids):
        bad.append("UIDL values not unique: %r" % uids)
    for u in uids:
        if not (1 <= len(u) <= 70 and all(0x21 <= c <= 0x7E for c in u)):
            bad.append("UIDL value %r is not 1-70 chars in 0x21-0x7E" % u)
    for i, e in enumerate(exp, 1):
        resp, lines, _ = p.retr(i)
        got = b"".join(l + b"\r\n" for l in lines)
        if resp != b"+OK %d octets" % len(e):
            bad.append("RETR %d reply %r, expected +OK %d octets" % (i, resp, len(e)))
        if got != e:
            j = first_diff(e, got)
            bad.append("RETR %d: %d octets, expected %d; first difference at %d: %r vs %r"
                       % (i, len(got), len(e), j, got[max(0, j - 30):j + 30],
                          e[max(0, j - 30):j + 30]))
    resp = p.quit()
    if not resp.startswith(b"+OK"):
        bad.append("QUIT reply %r" % resp)
    for b in bad:
        print(b)
    if bad:
        return 1
    print("poplib: %d messages identical, LIST/STAT/UIDL consistent" % len(exp))
    return 0


def whoami(host, port, user, passfile, ppid):
    p, resp = login(host, port, user, passfile)
    print("PASS: %s" % resp.decode(errors="replace"))
    p.noop()
    found = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = load("/proc/%s/status" % pid).decode()
        except OSError:
            continue
        fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
        if fields.get("PPid", "").strip() != str(ppid):
            continue
        found += 1
        print("pid %s %s" % (pid, fields.get("Name", "").strip()))
        for k in ("Uid", "Gid", "Groups"):
            print("%s: %s" % (k, " ".join(fields.get(k, "").split())))
    p.quit()
    if found != 1:
        print("found %d children of %s, expected 1" % (found, ppid))
        return 1
    return 0


def dele(host, port, user, passfile, msgs):
    p, resp = login(host, port, user, passfile)
    for m in msgs:
        print(p.dele(int(m)).decode(errors="replace"))
    print(p.quit().decode(errors="replace"))
    return 0


def try_pass(host, port, user, passfile):
    try:
        p, resp = login(host, port, user, passfile)
    except poplib.error_proto as e:
        print(e.args[0].decode(errors="replace"))
        return 0
    print(resp.decode(errors="replace"))
    p.quit()
    return 0


def stls_refuse(host, port, user):
    s = socket.create_connection((host, int(port)), timeout=30)
    f = s.makefile("rb")
    print(f.readline().rstrip(b"\r\n").decode(errors="replace"))
    s.sendall(b"CAPA\r\n")
    line = f.readline()
    if not line.startswith(b"+OK"):
        print("CAPA: %r" % line)
        return 1
    caps = []
    while True:
        line = f.readline().rstrip(b"\r\n")
        if line in (b".", b""):
            break
        caps.append(line.decode(errors="replace"))
    print("CAPA: " + " ".join(caps))
    s.sendall(b"USER %s\r\n" % user.encode())
    try:
        rest = f.read()
    except ConnectionResetError:
        rest = b""
    print("USER: connection closed" if rest == b"" else "USER: %r" % rest)
    return 0


def mkmsgs(d, n, tag):
    rng = random.Random(tag)
    os.makedirs(d, exist_ok=True)
    for i in range(1, int(n) + 1):
        mid = "<%s.%d@concurrent.test>" % (tag, i)
        lines = ["From: Sender %d <sender%d@example.org>" % (i, i),
                 "To: rcpt@example.org",
                 "Subject: concurrent delivery %d" % i,
                 "Date: Mon, 01 Jan 2024 00:00:00 +0000",
                 "Message-ID: " + mid,
                 ""]
        for j in range(rng.randint(1, 60)):
            lines.append("%s line %d of message %d %s" % (mid, j, i, "x" * rng.randint(0, 200)))
        if i % 7 == 0:
            lines.append(".")          # dot-stuffed on the wire
            lines.append("..two dots")
        with open(os.path.join(d, str(i)), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


MID_RE = re.compile(rb"^message-id:\s*(<[^>]*>)", re.I | re.M)


def source_by_mid(srcdir):
    out = {}
    for n in os.listdir(srcdir):
        data = load(os.path.join(srcdir, n))
        out[MID_RE.search(data).group(1)] = data
    return out


def drain(host, port, user, passfile, srcdir, out, stopfile, minsessions,
          part="0", parts="1"):
    src = source_by_mid(srcdir)
    part, parts = int(part), int(parts)
    with open(passfile) as f:
        pw = f.read().strip()
    sessions = committed = deleting = deleted = refused = aborted = failed = 0
    while sessions < int(minsessions) or not os.path.exists(stopfile):
        sessions += 1
        try:
            p = poplib.POP3(host, int(port), timeout=60)
            p.user(user)
            p.pass_(pw)
        except poplib.error_proto as e:
            refused += 1        # [IN-USE]: the lock stayed busy for 10 s
            if refused == 1:
                print("session %d: login refused: %s" % (sessions, e))
            time.sleep(0.5)
            continue
        mids = []
        try:
            # This client's share: the messages whose unique-id hashes to
            # part, so that no two clients fetch one message.
            mine = [int(l.split()[0]) for l in p.uidl()[1]
                    if int(hashlib.sha1(l.split()[1]).hexdigest(), 16) % parts == part]
            for i in mine:
                _, lines, _ = p.retr(i)
                got = b"".join(l + b"\r\n" for l in lines)
                m = MID_RE.search(got)
                want = src.get(m.group(1)) if m else None
                if want is None or got != want.replace(b"\n", b"\r\n"):
                    print("session %d: message %d (%r) differs from what was delivered"
                          % (sessions, i, m and m.group(1)))
                    return 1
                mids.append(m.group(1))
                p.dele(i)
        except (poplib.error_proto, OSError) as e:
            # The connection ended before QUIT: nothing was deleted.
            print("session %d: %s before QUIT" % (sessions, e))
            aborted += 1
            time.sleep(0.5)
            continue
        try:
            p.quit()
        except poplib.error_proto:
            failed += 1         # [SYS/TEMP]: nothing deleted
            time.sleep(0.5)
            continue
        committed += 1
        deleting += 1 if mids else 0
        deleted += len(mids)
        with open(out, "ab") as f:
            f.write(b"".join(m + b"\n" for m in mids))
        # A pause between sessions, as between polls: it leaves the MDA a
        # chance at the locks (procmail retries a busy dotlock a second
        # later).
        time.sleep(random.uniform(0.3, 0.8))
    print("sessions=%d committed=%d deleting=%d deleted=%d refused=%d aborted=%d quit-failed=%d"
          % (sessions, committed, deleting, deleted, refused, aborted, failed))
    return 0


def append(spool, files):
    fd = os.open(spool, os.O_WRONLY | os.O_APPEND)
    lock = spool + ".lock"
    for name in files:
        data = load(name)
        stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime()).encode()
        deadline = time.time() + 60
        while True:
            if time.time() > deadline:
                print("%s: could not lock %s in 60 s" % (name, spool))
                return 1
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                time.sleep(random.uniform(0.005, 0.03))
                continue
            if subprocess.run(["dotlockfile", "-r", "0", lock]).returncode == 0:
                break
            fcntl.lockf(fd, fcntl.LOCK_UN)
            time.sleep(random.uniform(0.005, 0.03))
        os.write(fd, b"From mda@concurrent.test " + stamp + b"\n" + data + b"\n")
        os.fsync(fd)
        subprocess.run(["dotlockfile", "-u", lock], check=True)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        time.sleep(random.uniform(0, 0.08))     # spread over the sessions
    os.close(fd)
    return 0


def mbox_messages(data):
    """Splits an mbox as the README defines it (From_ at the start of the
    file or after an empty line)."""
    starts = [m.start() for m in re.finditer(rb"(?:^|(?<=\n\n))From ", data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def concurrent_check(srcdir, spool, outs):
    src = source_by_mid(srcdir)
    seen = {}
    for o in outs:
        if os.path.exists(o):
            for m in load(o).split(b"\n"):
                if m:
                    seen.setdefault(m, []).append(os.path.basename(o))
    fetched = sum(len(w) for w in seen.values())
    left = 0
    for msg in mbox_messages(load(spool)):
        m = MID_RE.search(msg)
        seen.setdefault(m.group(1) if m else b"(no Message-ID)", []).append("spool")
        left += 1
    bad = 0
    for m, where in sorted(seen.items()):
        if m not in src:
            print("%r: not delivered, yet found in %s" % (m, where))
            bad += 1
        elif len(where) > 1:
            print("%r: duplicated: %s" % (m, where))
            bad += 1
    for m in src:
        if m not in seen:
            print("%r: lost" % m)
            bad += 1
    print("%d delivered, %d fetched and deleted, %d left in the spool, %d problems"
          % (len(src), fetched, left, bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "compare":
        return compare(argv[2], argv[3], argv[4])
    if len(argv) >= 5 and argv[1] == "union":
        return union(argv[2], argv[3], argv[4:])
    if len(argv) == 6 and argv[1] == "compare" and argv[5] == "--unordered":
        return compare_unordered(argv[2], argv[3], argv[4])
    if len(argv) == 7 and argv[1] == "poplib":
        return check_poplib(*argv[2:])
    if len(argv) == 7 and argv[1] == "whoami":
        return whoami(*argv[2:])
    if len(argv) >= 7 and argv[1] == "dele":
        return dele(argv[2], argv[3], argv[4], argv[5], argv[6:])
    if len(argv) == 6 and argv[1] == "pass":
        return try_pass(*argv[2:])
    if len(argv) == 5 and argv[1] == "stls-refuse":
        return stls_refuse(*argv[2:])
    if len(argv) == 5 and argv[1] == "mkmsgs":
        return mkmsgs(*argv[2:])
    if len(argv) in (10, 12) and argv[1] == "drain":
        return drain(*argv[2:])
    if len(argv) >= 4 and argv[1] == "append":
        return append(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "concurrent-check":
        return concurrent_check(argv[2], argv[3], argv[4:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
