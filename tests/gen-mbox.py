#!/usr/bin/env python3
"""Deterministic mbox generator for the pop3-handler tests (python3 stdlib only).

    python3 tests/gen-mbox.py --count N --seed S [--no-final-newline] [--pseudo]
                              [--split DIR] > mbox

The same N and S always give the same bytes.  Messages have realistic headers
(From, To, Subject, Date, a unique Message-ID) and bodies of varied size, and
the mbox edge cases are spread through them (each one is used at least once
when N is large enough, about 16; with fewer messages several cases share one):

  dot lines     body lines starting with '.', a line that is only '.', a '..' line
  >From         a '>From ' line in a body (and a body line "From ..." written
                as ">From ...", so the file parses unambiguously)
  crlf          a message whose every line ends in CRLF
  nul           NUL bytes inside a body line
  long          a body line of more than 64 KiB
  no-body       headers only, no blank line after them
  empty-body    headers, the blank line, no body
  x-uidl        an X-UIDL header (value "gen-S-I", I the message number)
  status        Status:/X-Status: headers on some messages

Mbox layout (README "Mailbox"): each message is a From_ line, the message
lines, then one empty separator line; the file ends with that empty line
unless --no-final-newline, which ends the last message's last line without
any newline.  --pseudo puts a UW-IMAP "DON'T DELETE THIS MESSAGE" pseudo
message first; it is not counted in N nor written by --split.

--omit I,J,... leaves those messages out of the output (and of --split) but
generates everything else exactly as without it: the file a correct QUIT
leaves after "DELE I", "DELE J".  When the last message is omitted, the one
before keeps its separator line, as it had in the full file.

--split DIR writes DIR/1 .. DIR/N: the payload RETR must send for each
message before dot-stuffing: every line end as CRLF, a final line without
newline given a CRLF, the From_ line and the separator empty line left out.
"""

import argparse
import os
import random
import sys
import time

WORDS = ("the quick brown fox jumps over lazy dog mail server spool message "
         "header body line test data alpha beta gamma delta epsilon zeta eta "
         "theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon "
         "phi chi psi omega report meeting lunch tomorrow please review attached "
         "patch build failed passed release notes kernel queue lock unlock").split()
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.test"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]

# Edge cases, in the order they are spread over the messages.
EDGES = ["dotlines", "crlf", "gtfrom", "nul", "nobody", "onlydot", "status",
         "long", "emptybody", "dotdot", "xuidl", "fromline", "status2",
         "crlf-dots", "nul2", "status3"]
# Cases that decide the shape of a message: at most one per message.
SHAPES = {"nobody", "emptybody"}


def asctime(ts):
    t = time.gmtime(ts)
    return "%s %s %2d %02d:%02d:%02d %d" % (DAYS[t.tm_wday], MONTHS[t.tm_mon - 1],
                                            t.tm_mday, t.tm_hour, t.tm_min,
                                            t.tm_sec, t.tm_year)


def rfc2822(ts):
    t = time.gmtime(ts)
    return "%s, %02d %s %d %02d:%02d:%02d +0000" % (DAYS[t.tm_wday], t.tm_mday,
                                                   MONTHS[t.tm_mon - 1], t.tm_year,
                                                   t.tm_hour, t.tm_min, t.tm_sec)


def text_line(rng, maxwords=14):
    n = rng.randint(1, maxwords)
    return " ".join(rng.choice(WORDS) for _ in range(n)).encode()


def assign_edges(count):
    """Returns a list of edge-case sets, one per message."""
    per = [set() for _ in range(count)]
    if count == 0:
        return per
    # The last message stays plain so --no-final-newline affects an ordinary line.
    usable = count - 1 if count > 1 else 1
    for j, edge in enumerate(EDGES):
        if usable >= len(EDGES):
            i = (j * usable) // len(EDGES)
        else:
            i = j % usable
        if edge in SHAPES and (per[i] - {"status", "status2", "status3", "xuidl"}):
            # A no-body/empty-body message can carry only header cases: find a
            # message that has nothing else yet, else skip this case.
            free = [k for k in range(usable) if not per[k]]
            if not free:
                continue
            i = free[0]
        elif per[i] & SHAPES and edge not in ("status", "status2", "status3", "xuidl", "crlf"):
            free = [k for k in range(usable) if not (per[k] & SHAPES)]
            if not free:
                continue
            i = free[(j * 7) % len(free)]
        per[i].add(edge)
    return per


def make_message(rng, seed, num, edges, base_ts):
    """Returns (from_line, [message lines without line ends], eol)."""
    ts = base_ts + num * 3607 + rng.randint(0, 3000)
    sender = "%s@%s" % (rng.choice(NAMES), rng.choice(DOMAINS))
    rcpt = "%s@%s" % (rng.choice(NAMES), rng.choice(DOMAINS))
    from_line = ("From %s %s" % (sender, asctime(ts))).encode()
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
    headers = [
        b"Return-Path: <" + sender.encode() + b">",
        b"Received: from mx%d.%s by spool.example.org with ESMTP id %08X;"
        % (rng.randint(1, 9), rng.choice(DOMAINS).encode(), rng.getrandbits(32)),
        b"\t" + rfc2822(ts - 5).encode(),
        ("From: %s <%s>" % (sender.split("@")[0].capitalize(), sender)).encode(),
        ("To: %s" % rcpt).encode(),
        ("Subject: [%d] %s" % (num, subject)).encode(),
        ("Date: %s" % rfc2822(ts)).encode(),
        ("Message-ID: <%d.%d.%08x@gen-mbox.example.org>"
         % (seed, num, rng.getrandbits(32))).encode(),
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=us-ascii",
    ]
    if "xuidl" in edges:
        headers.append(("X-UIDL: gen-%d-%d" % (seed, num)).encode())
    if "status" in edges or "status3" in edges:
        headers.append(b"Status: RO")
    if "status2" in edges or "status3" in edges:
        headers.append(b"Status: O")
        headers.append(b"X-Status: A")
    # A duplicate Status: looks odd: keep only the first.
    seen_status = False
    hdrs = []
    for h in headers:
        if h.startswith(b"Status:"):
            if seen_status:
                continue
            seen_status = True
        hdrs.append(h)
    headers = hdrs

    if "nobody" in edges:
        lines = headers
    elif "emptybody" in edges:
        lines = headers + [b""]
    else:
        # Varied sizes: mostly small, some medium, a few large.
        r = rng.random()
        if r < 0.6:
            nbody = rng.randint(1, 15)
        elif r < 0.9:
            nbody = rng.randint(16, 120)
        else:
            nbody = rng.randint(121, 600)
        body = []
        for _ in range(nbody):
            if rng.random() < 0.12:
                body.append(b"")
            else:
                body.append(text_line(rng))
        # The body must not end with an empty line (it would look like part of
        # the separator to a reader of the file) nor start the body oddly.
        if not body or body[-1] == b"":
            body.append(text_line(rng))

        def put(line):
            pos = rng.randint(0, len(body) - 1)
            body.insert(pos, line)

        if "dotlines" in edges or "crlf-dots" in edges:
            put(b".hidden line that starts with a dot")
            put(b". a dot and a space")
            put(b"...three dots")
        if "onlydot" in edges:
            put(b".")
            body.append(b".")  # also the last line of the message
        if "dotdot" in edges:
            put(b"..")
        if "gtfrom" in edges:
            put(b">From the archives, a quoted From_ line")
            put(b"")
            put(b">From again, this one after an empty line")
        if "fromline" in edges:
            # Written as ">From " below, as an mboxrd writer would.
            body.insert(0, b"")
            body.insert(1, b"From the desk of the generator: this line was escaped")
        if "nul" in edges or "nul2" in edges:
            put(b"NUL bytes follow:\x00here\x00\x00and end")
        if "long" in edges:
            put(b"L" + bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(64)) * 1100 + b"END")
        body = [b">" + l if l.startswith(b"From ") else l for l in body]
        lines = headers + [b""] + body
    eol = b"\r\n" if ("crlf" in edges or "crlf-dots" in edges) else b"\n"
    return from_line, lines, eol


PSEUDO = [
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000",
    b"From: Mail System Internal Data <MAILER-DAEMON@spool.example.org>",
    b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA",
    b"Message-ID: <1704067200@spool.example.org>",
    b"X-IMAP: 1704067200 0000000000",
    b"Status: RO",
    b"",
    b"This text is part of the internal format of your mail folder, and is not",
    b"a real message.  It is created automatically by the mail system software.",
    b"If deleted, important folder data will be lost, and it will be re-created",
    b"with the data reset to initial values.",
]


def main():
    ap = argparse.ArgumentParser(description="deterministic mbox generator")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-final-newline", action="store_true")
    ap.add_argument("--pseudo", action="store_true",
                    help="put a UW-IMAP pseudo-message first (not counted)")
    ap.add_argument("--omit", metavar="I,J,...", default="",
                    help="leave these messages out (numbered as without --omit):"
                         " the mbox a correct UPDATE leaves after DELE I, DELE J")
    ap.add_argument("--split", metavar="DIR",
                    help="write each message's expected RETR payload as DIR/1..N")
    args = ap.parse_args()
    if args.count < 0:
        ap.error("--count must be >= 0")

    rng = random.Random(args.seed)
    base_ts = 1700000000 + (args.seed % 1000) * 86400
    edges = assign_edges(args.count)
    msgs = []
    if args.pseudo:
        msgs.append((b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024", PSEUDO, b"\n", None))
    for i in range(args.count):
        f, lines, eol = make_message(rng, args.seed, i + 1, edges[i], base_ts)
        msgs.append((f, lines, eol, i + 1))

    omit = set(int(x) for x in args.omit.split(",") if x)
    out = bytearray()
    for k, (f, lines, eol, num) in enumerate(msgs):
        last = k == len(msgs) - 1
        if num in omit:
            continue
        out += f + b"\n"
        body = bytearray()
        for j, l in enumerate(lines):
            body += l
            if not (last and args.no_final_newline and j == len(lines) - 1):
                body += eol
        out += body
        if not (last and args.no_final_newline):
            out += b"\n"  # the separator empty line
        if args.split and num is not None:
            os.makedirs(args.split, exist_ok=True)
            with open(os.path.join(args.split, str(num)), "wb") as fh:
                fh.write(b"".join(l + b"\r\n" for l in lines))
    sys.stdout.buffer.write(bytes(out))


if __name__ == "__main__":
    main()
