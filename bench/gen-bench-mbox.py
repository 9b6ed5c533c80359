#!/usr/bin/env python3
"""Deterministic benchmark mailbox generator (python3 stdlib only).

    python3 bench/gen-bench-mbox.py --count N --size BYTES --seed S [-o FILE]

The same N, BYTES and S always give the same bytes (the generator's VERSION is
part of every cache key in bench/pop3bench.py, so a change here invalidates
cached mailboxes).  The file is about BYTES long and holds exactly N messages:

  headers   Return-Path, two or three Received (folded), From, To, sometimes
            Cc, Subject, Date, a unique Message-ID, sometimes In-Reply-To and
            References, MIME headers, sometimes X-Mailer and Status: RO.
  bodies    exponentially distributed sizes, the mean chosen so the file comes
            out near BYTES (about 4.6 KiB at 180 MB / 24,000 messages, the
            issue's "about 5 KiB"), lines of words cut from one fixed text pool;
            message 1000, 2000, ... (every 1000th) has a 2 MiB body instead.
  edge      about 2% have dot lines (".", "..", ".text"), 1% a ">From " line,
  cases     1% are CRLF throughout (all but the From_ line and the separator,
            as tests/gen-mbox.py writes them), 0.5% a 20 to 100 KiB line
            without spaces.  No NUL bytes: the peers need not agree on those.

Layout: "From " line, message lines, one empty separator line, for each
message.  With --stats the count and size go to stderr as one JSON line.
"""

import argparse
import bisect
import json
import random
import sys
import time

VERSION = 1

WORDS = ("the of and to in is that for it as with was on be by this are at via "
         "or have an not but which all were we when your can said there use each "
         "she do how their if will up other about out many then them these so "
         "some her would make like him into time has look two more write go see "
         "number no way could people my than first water been call who oil its "
         "now find long down day did get come made may part meeting report lunch "
         "tomorrow please review attached patch build failed passed release notes "
         "kernel queue lock server spool mailbox invoice budget quarter schedule "
         "project deadline customer thanks regards cheers agenda minutes draft "
         "proposal contract shipping order tracking password account security").split()
FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan",
         "Judy", "Mallory", "Oscar", "Peggy", "Trent", "Victor", "Walter", "Yusuf",
         "Zoe", "Marta", "Jens", "Ingrid", "Pierre", "Aiko", "Ravi"]
LAST = ["Smith", "Jones", "Kowalski", "Nguyen", "Garcia", "Müller", "Rossi", "Tanaka",
        "Olsen", "Dubois", "Novak", "Silva", "Brown", "Singh", "Ivanova", "Kim"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.test", "lists.example.org",
           "corp.example", "shop.example.com", "news.example.net"]
MAILERS = ["Mozilla Thunderbird 115.4.1", "Mutt/2.2.9 (2022-11-12)", "Microsoft Outlook 16.0",
           "Apple Mail (2.3731.700.6)", "Evolution 3.46.4", "Roundcube Webmail/1.6.5"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
BIG_EVERY = 1000
BIG_BODY = 2 * 1024 * 1024
POOL_BYTES = 3 * 1024 * 1024  # larger than BIG_BODY, so any body is one slice


def asctime(t):
    g = time.gmtime(t)
    return "%s %s %2d %02d:%02d:%02d %d" % (DAYS[g.tm_wday], MONTHS[g.tm_mon - 1], g.tm_mday,
                                            g.tm_hour, g.tm_min, g.tm_sec, g.tm_year)


def rfc2822(t):
    g = time.gmtime(t)
    return "%s, %02d %s %d %02d:%02d:%02d +0000" % (DAYS[g.tm_wday], g.tm_mday, MONTHS[g.tm_mon - 1],
                                                   g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)


def make_pool(rng):
    """Text lines of 20..76 characters with a blank line between paragraphs,
    never two blank lines in a row.  Returns (bytes, line start offsets)."""
    lines = []
    size = 0
    para = 0
    while size < POOL_BYTES:
        if para > 2 and rng.random() < 0.15:
            lines.append(b"\n")
            para = 0
        else:
            n = rng.randint(20, 76)
            words = []
            ln = 0
            while ln < n:
                w = rng.choice(WORDS)
                words.append(w)
                ln += len(w) + 1
            if rng.random() < 0.3:
                words[-1] += rng.choice([".", ",", "?", "!"])
            if para == 0:
                words[0] = words[0].capitalize()
            lines.append((" ".join(words) + "\n").encode())
            para += 1
        size += len(lines[-1])
    offs = [0]
    for ln in lines:
        offs.append(offs[-1] + len(ln))
    return b"".join(lines), offs


def person(rng):
    f = rng.choice(FIRST)
    la = rng.choice(LAST)
    addr = "%s.%s@%s" % (f.lower(), la.lower().replace("ü", "ue"), rng.choice(DOMAINS))
    return "%s %s" % (f, la), addr


def headers(rng, seed, num, t):
    """One message's From_ line and header block (with the blank line), LF ends."""
    name, addr = person(rng)
    _, to = person(rng)
    subj = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))).capitalize()
    if rng.random() < 0.3:
        subj = "Re: " + subj
    mid = "<%d.%d.%08x@%s>" % (seed, num, rng.getrandbits(32), rng.choice(DOMAINS))
    h = ["From %s %s" % (addr, asctime(t)),
         "Return-Path: <%s>" % addr]
    hops = rng.randint(2, 3)
    for k in range(hops):
        h.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby spool.example.org"
                 " (Postfix) with ESMTPS id %010X\n\tfor <%s>; %s"
                 % (k + 1, rng.choice(DOMAINS), k + 1, rng.choice(DOMAINS), rng.randint(1, 254),
                    rng.getrandbits(40), to, rfc2822(t - 2 * (hops - k))))
    h.append("From: %s <%s>" % (name, addr))
    h.append("To: %s" % to)
    if rng.random() < 0.25:
        h.append("Cc: %s, %s" % (person(rng)[1], person(rng)[1]))
    h.append("Subject: %s" % subj)
    h.append("Date: %s" % rfc2822(t))
    h.append("Message-ID: %s" % mid)
    if subj.startswith("Re: "):
        ref = "<%d.%d.%08x@%s>" % (seed, rng.randint(1, max(1, num)), rng.getrandbits(32),
                                   rng.choice(DOMAINS))
        h.append("In-Reply-To: %s" % ref)
        h.append("References: %s" % ref)
    h.append("MIME-Version: 1.0")
    h.append("Content-Type: text/plain; charset=utf-8; format=flowed")
    h.append("Content-Transfer-Encoding: 8bit")
    if rng.random() < 0.5:
        h.append("X-Mailer: %s" % rng.choice(MAILERS))
    if rng.random() < 0.2:
        h.append("Status: RO")
    return ("\n".join(h) + "\n\n").encode()


def main():
    ap = argparse.ArgumentParser(description="deterministic benchmark mbox generator")
    ap.add_argument("--count", type=int, required=True, help="number of messages")
    ap.add_argument("--size", type=int, required=True, help="target file size in bytes")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("-o", "--output", help="file to write (default stdout)")
    ap.add_argument("--stats", action="store_true", help="print count and size to stderr")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be >= 1")

    rng = random.Random(args.seed)
    pool, offs = make_pool(rng)
    t0 = 1600000000 + (args.seed % 1000) * 86400
    # Headers first, so the body mean can be set from what is left of the budget.
    hdrs = [headers(rng, args.seed, i + 1, t0 + i * 37 + rng.randint(0, 30))
            for i in range(args.count)]
    nbig = args.count // BIG_EVERY
    left = args.size - sum(len(h) + 1 for h in hdrs) - nbig * BIG_BODY
    small = args.count - nbig
    # Less what the long lines (0.5% of 60 KiB on average) and cutting at a line
    # end (half a line, about 30 bytes) add on average.
    mean = max(200.0, left / small - 0.005 * 60 * 1024 - 30) if small else 200.0

    out = open(args.output, "wb") if args.output else sys.stdout.buffer
    buf = []
    total = 0
    for i in range(args.count):
        num = i + 1
        want = BIG_BODY if num % BIG_EVERY == 0 else max(1, int(rng.expovariate(1.0 / mean)))
        # One slice of the pool, from a line start, ending on a non-blank line.
        s = rng.randrange(0, bisect.bisect_left(offs, len(pool) - want - 200))
        e = bisect.bisect_left(offs, offs[s] + want, lo=s + 1)
        if e >= len(offs):
            e = len(offs) - 1
        while pool[offs[e] - 2:offs[e]] == b"\n\n" or e == s:
            e += 1
        body = pool[offs[s]:offs[e]]
        r = rng.random()
        if r < 0.02:
            # Dot lines: a line that is only ".", one that is "..", one that
            # starts with a dot; dot-stuffing must apply to each.
            cut = body.find(b"\n", rng.randrange(len(body))) + 1 or len(body)
            body = body[:cut] + b".\n..\n.hidden text after a dot\n" + body[cut:]
        elif r < 0.03:
            cut = body.find(b"\n", rng.randrange(len(body))) + 1 or len(body)
            body = (body[:cut] + b">From %s %s\n" % (person(rng)[1].encode(),
                                                      asctime(t0 - i).encode()) + body[cut:])
        elif r < 0.035:
            cut = body.find(b"\n", rng.randrange(len(body))) + 1 or len(body)
            n = rng.randint(20 * 1024, 100 * 1024)
            body = body[:cut] + (b"0123456789abcdefghijklmnopqrstuvwxyz" * (n // 36 + 1))[:n] \
                + b"\n" + body[cut:]
        h = hdrs[i]
        if 0.035 <= r < 0.045:
            # CRLF throughout, but the From_ line and the separator keep LF.
            nl = h.index(b"\n") + 1
            msg = h[:nl] + (h[nl:] + body).replace(b"\n", b"\r\n") + b"\n"
        else:
            msg = h + body + b"\n"
        buf.append(msg)
        total += len(msg)
        if len(buf) >= 256:
            out.write(b"".join(buf))
            buf = []
    out.write(b"".join(buf))
    if args.output:
        out.close()
    else:
        out.flush()
    if args.stats:
        print(json.dumps({"count": args.count, "bytes": total, "seed": args.seed,
                          "version": VERSION}), file=sys.stderr)


if __name__ == "__main__":
    main()
