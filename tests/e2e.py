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

A failure prints what differs and exits 1.
"""

import os
import poplib
import sys

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
    if mode == "fetchmail":
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


def main(argv):
    if len(argv) == 5 and argv[1] == "compare":
        return compare(argv[2], argv[3], argv[4])
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
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
