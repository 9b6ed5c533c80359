#!/usr/bin/env python3
"""Writes to stdout the 1 MiB mbox of the finding "TOP: a CR held across a
read chunk" (README.md here): a message whose header line "\\r\\r\\n" has its
first CR as the last byte of maildrop_send's first 1 MiB read, so that TOP
took the line for the blank line ending the headers.

    python3 tests/fuzz-crashes/make-top-held-cr-1mib.py > /tmp/top.mbox
    fuzz/fuzz-mbox /tmp/top.mbox          # aborted before b086c72
"""
import sys

CHUNK = 1 << 20
head = b"From a\n"          # the message data starts at offset 7
n = CHUNK - 1               # header bytes before the "\r\r\n" line
line = b"X-Filler: " + b"a" * 100 + b"\n"
fill = b""
while len(fill) + len(line) <= n - 20:
    fill += line
fill += b"X-Last: " + b"b" * (n - len(fill) - 9) + b"\n"
assert len(fill) == n
sys.stdout.buffer.write(head + fill +
                        b"\r\r\nSubject: after the odd line\n\nbody 1\nbody 2\n\n")
