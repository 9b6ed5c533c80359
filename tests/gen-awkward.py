#!/usr/bin/env python3
"""An mbox of messages awkward for unique-ids (python3 stdlib only), for
tests/peers.bats and tests/uidl-schemes.bats, which list it through the real
popa3d and Dovecot and through pop3-handler's -i schemes:

    python3 tests/gen-awkward.py [--pseudo] [--no-final-newline] > mbox

The bytes are fixed. Among the messages: folded Received lines, several
Received, Date and Message-ID before and after the first Received, no Date,
no header popa3d hashes at all (two different messages), an exact copy of an
earlier message, header names in upper and lower case, a lower-case
x-delivery-id (popa3d hashes only a capital X), Delivered-To twice, CRLF
throughout (popa3d reads on past a CR LF line for headers, so body lines
named like headers count for it), an empty line of CR LF after LF headers,
headers only, an X-UIDL header, a Received line of 200 KiB (longer than the
scan buffer), ">From " and "From " lines in a body.

--pseudo puts a UW-IMAP pseudo-message first (X-IMAP, the Subject c-client
writes); --no-final-newline ends the last line without a newline. Every
message but the CRLF ones ends with LF and one empty separator line: a CR LF
line before a From_ line would end a message for pop3-handler and not for
popa3d (README, "Migrating from popa3d").
"""

import sys


def msg(frm, headers, body, crlf=False):
    eol = "\r\n" if crlf else "\n"
    text = "".join(h + eol for h in headers) + eol + "".join(b + eol for b in body)
    return ("From %s Mon Jan  5 10:00:00 2026\n" % frm) + text


RECV = ["Received: from mx1.example.org (mx1.example.org [192.0.2.1])",
        "\tby spool.example.net (Postfix) with ESMTP id 4A1B2C3D",
        "\tfor <user@example.net>; Mon, 5 Jan 2026 10:00:00 +0000"]


def messages():
    m = []
    m.append(msg("alice@example.org",
                 ["Return-Path: <alice@example.org>"] + RECV +
                 ["Received: from client (client [198.51.100.7]) by mx1.example.org;"
                  " Mon, 5 Jan 2026 09:59:58 +0000",
                  "From: Alice <alice@example.org>", "To: user@example.net",
                  "Subject: several Received, Date and Message-ID after them",
                  "Date: Mon, 5 Jan 2026 09:59:57 +0000",
                  "Message-ID: <1@example.org>"],
                 ["Hello.", "", "Two paragraphs."]))
    m.append(msg("bob@example.org",
                 ["Date: Mon, 5 Jan 2026 10:01:00 +0000",
                  "Message-ID: <2@example.org>",
                  "  <folded-continuation@example.org>",
                  "From: bob@example.org", "Subject: Date and Message-ID first"] + RECV,
                 ["body"]))
    m.append(msg("carol@example.org",
                 ["Received: by spool.example.net; Mon, 5 Jan 2026 10:02:00 +0000",
                  "From: carol@example.org", "Subject: no Date, no Message-ID"],
                 ["no date here"]))
    for i in (1, 2):
        m.append(msg("script@localhost",
                     ["From: script@localhost", "To: user@example.net",
                      "Subject: nothing popa3d hashes, number %d" % i],
                     ["different bodies, %d" % i]))
    m.append(m[0])  # an exact copy of the first
    m.append(msg("dave@example.org",
                 ["RECEIVED: from upper.example.org by spool.example.net; Mon, 5 Jan 2026 10:03:00 +0000",
                  "delivered-to: user@example.net",
                  "DATE: Mon, 5 Jan 2026 10:03:00 +0000",
                  "message-id: <7@example.org>",
                  "x-delivery-id: lower-case-x-not-hashed",
                  "X-DELIVERY-ID: capital-x-hashed",
                  "Subject: names in mixed case"],
                 ["mixed"]))
    m.append(msg("erin@example.org",
                 ["Delivered-To: user@example.net", "Delivered-To: alias@example.net",
                  "X-Delivery-ID: d-8", "X-Delivery-ID: d-8-again",
                  "Received: by spool.example.net; Mon, 5 Jan 2026 10:04:00 +0000",
                  "Delivered-To: after-received@example.net",
                  "Subject: Delivered-To and X-Delivery-ID each"],
                 ["x"]))
    m.append(msg("frank@example.org",
                 RECV + ["From: frank@example.org", "Subject: CRLF throughout",
                         "Date: Mon, 5 Jan 2026 10:05:00 +0000"],
                 ["first body line", "Delivered-To: in-the-body@example.net",
                  "\tcontinued in the body", "Received: in the body, not the first",
                  "X-Delivery-ID: in-the-body"], crlf=True))
    m.append("From grace@example.org Mon Jan  5 10:06:00 2026\n"
             "Received: by spool.example.net; Mon, 5 Jan 2026 10:06:00 +0000\n"
             "Subject: LF headers, a CR LF empty line\n"
             "\r\n"
             "Message-ID: <in-body-but-popa3d-reads-it-as-a-header@example.org>\n"
             "Delivered-To: body@example.net\n"
             "\n"
             "Delivered-To: after-a-bare-LF-line@example.net\n")
    m.append("From heidi@example.org Mon Jan  5 10:07:00 2026\n"
             "Received: by spool.example.net; Mon, 5 Jan 2026 10:07:00 +0000\n"
             "Subject: headers only, no empty line\n")
    m.append(msg("ivan@example.org",
                 ["Received: by spool.example.net; Mon, 5 Jan 2026 10:08:00 +0000",
                  "X-UIDL: qpopper-style-id-11", "Subject: an X-UIDL header"],
                 ["popa3d and Dovecot do not read X-UIDL"]))
    m.append(msg("judy@example.org",
                 ["Received: from long.example.org " + "x" * 200 * 1024 +
                  " by spool.example.net; Mon, 5 Jan 2026 10:09:00 +0000",
                  "Subject: a Received line of 200 KiB"],
                 ["long"]))
    m.append(msg("mallory@example.org",
                 ["Received: by spool.example.net; Mon, 5 Jan 2026 10:10:00 +0000",
                  "Subject: From lines in the body"],
                 [">From the start of a line", "text", "From not after an empty line"]))
    m.append(msg("oscar@example.org",
                 ["Received: by spool.example.net; Mon, 5 Jan 2026 10:11:00 +0000",
                  "Subject: the last one", "Date: Mon, 5 Jan 2026 10:11:00 +0000"],
                 ["last line"]))
    return m


PSEUDO = ("From MAILER-DAEMON Mon Jan  5 09:00:00 2026\n"
          "Date: Mon, 5 Jan 2026 09:00:00 +0000\n"
          "From: Mail System Internal Data <MAILER-DAEMON@spool.example.net>\n"
          "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
          "Message-ID: <1767603600@spool.example.net>\n"
          "X-IMAP: 1767603600 0000000000\n"
          "Status: RO\n"
          "\n"
          "This text is part of the internal format of your mail folder, and is not\n"
          "a real message.  It is created automatically by the mail system software.\n"
          "If deleted, important folder data will be lost, and it will be re-created\n"
          "with the data reset to initial values.\n")


def main():
    args = sys.argv[1:]
    parts = ([PSEUDO] if "--pseudo" in args else []) + messages()
    out = "\n".join(parts) + "\n"
    if "--no-final-newline" in args:
        out = out.rstrip("\n")
    sys.stdout.buffer.write(out.encode())


if __name__ == "__main__":
    main()
