# pop3-handler: one POP3 session on stdin/stdout.

CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE
LDLIBS = -lpam -llockfile -lmd -lxxhash -lnettle -lidn -lcrypt
# Hardening, as Debian's dpkg-buildflags with hardening=+all gives it, spelled
# out so that a plain make has it too: a canary in every function with an
# array or an address taken, glibc's checked string and memory calls, the
# GOT read-only after start, and a PIE. -fcf-protection (x86's shadow stack
# and IBT marks) only where the compiler takes it for this target. These are
# added to CFLAGS and LDFLAGS, never replaced by them; "make HARDEN_CFLAGS="
# and the like turn them off.
CF_PROTECTION := $(shell $(CC) -fcf-protection -E -x c /dev/null >/dev/null 2>&1 && echo -fcf-protection)
HARDEN_CPPFLAGS = -D_FORTIFY_SOURCE=2
HARDEN_CFLAGS = -fstack-protector-strong -fPIE -Wformat -Werror=format-security $(CF_PROTECTION)
HARDEN_LDFLAGS = -pie -Wl,-z,relro -Wl,-z,now
PREFIX = /usr/local
SBINDIR = $(PREFIX)/sbin
MAN8DIR = $(PREFIX)/share/man/man8
# The deployment files are examples, not live configuration: installed here,
# they enable nothing; the admin copies them to /etc (README, "Deploying").
DOCDIR = $(PREFIX)/share/doc/pop3-handler
EXAMPLESDIR = $(DOCDIR)/examples
EXAMPLES = pam.d/pop3 xinetd.d/pop3 systemd/pop3.socket systemd/pop3@.service \
	stunnel/pop3s.conf stunnel/pop3-stls.conf \
	fail2ban/filter.d/pop3-handler.conf fail2ban/jail.d/pop3-handler.conf
DESTDIR =
BATS ?= bats

PROG = pop3-handler
OBJS = pop3-handler.o session.o client.o timing.o text.o authorization.o \
    root.o transaction.o auth.o maildrop.o mbox.o uidl.o cache.o commit.o journal.o \
    remap.o mailfile.o output.o lines.o dotlock.o privsep.o sasl.o userstate.o proxy.o \
    vusers.o

# The dotlock keeper's own program, installed beside the handler, which runs
# it from there (dotlock.c). Static, so that an idle session's keeper holds a
# few pages of its own and loads no library (README, "Memory").
KEEPER = pop3-handler-keeper
KEEPER_OBJS = keeper.o dotlock.o
KEEPER_LDFLAGS = -static-pie -Wl,-z,relro -Wl,-z,now

all: $(PROG) $(KEEPER)

$(PROG): $(OBJS)
	$(CC) $(HARDEN_CFLAGS) $(CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(KEEPER): $(KEEPER_OBJS)
	$(CC) $(HARDEN_CFLAGS) $(CFLAGS) $(KEEPER_LDFLAGS) $(LDFLAGS) -o $@ $(KEEPER_OBJS) -llockfile

.c.o:
	$(CC) $(HARDEN_CPPFLAGS) $(CPPFLAGS) $(HARDEN_CFLAGS) $(CFLAGS) -c -o $@ $<

pop3-handler.o: pop3-handler.c params.h auth.h client.h dotlock.h maildrop.h \
    output.h privsep.h proxy.h root.h session.h text.h timing.h transaction.h \
    vusers.h
session.o: session.c params.h auth.h authorization.h client.h maildrop.h \
    output.h session.h transaction.h
client.o: client.c params.h auth.h client.h maildrop.h output.h privsep.h \
    proxy.h session.h timing.h
timing.o: timing.c timing.h
text.o: text.c params.h text.h
authorization.o: authorization.c params.h auth.h authorization.h client.h \
    maildrop.h output.h privsep.h root.h sasl.h session.h text.h
root.o: root.c params.h auth.h client.h dotlock.h maildrop.h output.h \
    privsep.h root.h session.h text.h timing.h transaction.h vusers.h
transaction.o: transaction.c params.h auth.h client.h maildrop.h output.h \
    session.h text.h timing.h transaction.h userstate.h
auth.o: auth.c params.h auth.h
maildrop.o: maildrop.c params.h cache.h commit.h journal.h lines.h maildrop.h \
    mailfile.h mbox.h output.h remap.h userstate.h xxh3.h
mbox.o: mbox.c params.h lines.h maildrop.h mbox.h output.h xxh3.h
uidl.o: uidl.c params.h maildrop.h mbox.h output.h xxh3.h
cache.o: cache.c params.h cache.h maildrop.h mailfile.h mbox.h output.h \
    userstate.h xxh3.h
commit.o: commit.c params.h commit.h journal.h maildrop.h mailfile.h output.h \
    remap.h userstate.h xxh3.h
remap.o: remap.c params.h commit.h journal.h maildrop.h mailfile.h output.h \
    remap.h userstate.h xxh3.h
journal.o: journal.c params.h journal.h maildrop.h mailfile.h output.h \
    userstate.h xxh3.h
mailfile.o: mailfile.c params.h dotlock.h maildrop.h mailfile.h output.h \
    xxh3.h
output.o: output.c output.h
lines.o: lines.c lines.h
dotlock.o: dotlock.c params.h dotlock.h
keeper.o: keeper.c dotlock.h
privsep.o: privsep.c params.h privsep.h
sasl.o: sasl.c sasl.h
userstate.o: userstate.c params.h userstate.h
proxy.o: proxy.c params.h proxy.h
vusers.o: vusers.c params.h auth.h vusers.h

# Every version of lines.c's loops the CPU has, held to a reference: the
# handler runs only the best one (tests/lines.bats runs this).
tests/lines-check: tests/lines-check.c tests/lines-ref.c tests/lines-ref.h lines.o lines.h
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ tests/lines-check.c tests/lines-ref.c lines.o

check: $(PROG) $(KEEPER) tests/lines-check
	BATS=$(BATS) sh tests/run

install: $(PROG) $(KEEPER)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MAN8DIR)
	install -m 755 $(PROG) $(DESTDIR)$(SBINDIR)/$(PROG)
	install -m 755 $(KEEPER) $(DESTDIR)$(SBINDIR)/$(KEEPER)
	install -m 644 $(PROG).8 $(DESTDIR)$(MAN8DIR)/$(PROG).8
	install -m 644 $(KEEPER).8 $(DESTDIR)$(MAN8DIR)/$(KEEPER).8
	for f in $(EXAMPLES); do \
		install -d $(DESTDIR)$(EXAMPLESDIR)/$${f%/*} && \
		install -m 644 $$f $(DESTDIR)$(EXAMPLESDIR)/$$f || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/$(PROG) $(DESTDIR)$(SBINDIR)/$(KEEPER) \
		$(DESTDIR)$(MAN8DIR)/$(PROG).8 $(DESTDIR)$(MAN8DIR)/$(KEEPER).8
	for f in $(EXAMPLES); do rm -f $(DESTDIR)$(EXAMPLESDIR)/$$f; done
	for d in $(EXAMPLES); do echo $${d%/*}; echo $${d%%/*}; done | sort -ru | \
		while read -r d; do rmdir $(DESTDIR)$(EXAMPLESDIR)/$$d 2>/dev/null; done; \
		rmdir $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null; true

clean:
	rm -f $(PROG) $(KEEPER) $(OBJS) keeper.o tests/lines-check

# The Debian package (debian/, README "Installing on Debian"): ../pop3-handler_*.deb.
deb:
	dpkg-buildpackage -us -uc -b

.PHONY: deb

# Benchmark against popa3d and Dovecot (issue 4), as root: one table on stdout.
# Not part of check. bench-quick: small mailboxes, 2 repeats, a couple of minutes.
bench: $(PROG) $(KEEPER)
	sh bench/run.sh

bench-quick: $(PROG) $(KEEPER)
	BENCH_QUICK=1 sh bench/run.sh

.PHONY: bench bench-quick

# Sanitizers and fuzzing (issue 6; fuzz/README.md). Not part of check.
# sanitize: the bats suite (all but timing.bats) against pop3-handler-san
# (ASan, LSan, UBSan).
# fuzz: each libFuzzer harness for FUZZ_SECONDS; needs clang.
# fuzz-volume: the same, faster, for the long runs (issue 12).
# clang: with gcc, UBSan's reports ignore log_path and go to stderr only,
# where the tests would not see them.
SAN_CC = clang
SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -Wall -Wextra
# libasan's crypt() interceptor finds no real crypt() unless libcrypt is
# loaded at start: pam_unix would call a null pointer.
SAN_LDLIBS = -Wl,--no-as-needed -lcrypt
FUZZ_SECONDS = 60

# The sources of $(OBJS) in one sanitized program, built apart from them.
$(PROG)-san: $(OBJS:.o=.c) $(wildcard *.h) tests/san-options.c
	$(SAN_CC) $(SAN_CFLAGS) $(CPPFLAGS) -DSAN_LOG_DIR='"$(CURDIR)/san-logs"' \
		-o $@ $(OBJS:.o=.c) tests/san-options.c $(LDLIBS) $(SAN_LDLIBS)

sanitize: $(PROG)-san $(KEEPER)
	BATS=$(BATS) SAN_LOG_DIR=$(CURDIR)/san-logs sh tests/sanitize.sh

fuzz:
	$(MAKE) -C fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS) LIBS="$(LDLIBS)"

# fuzz-volume: the light build for FUZZ_SECONDS or FUZZ_RUNS executions per
# harness, then its corpus replayed under the sanitized one (fuzz/README.md).
FUZZ_RUNS = -1
fuzz-volume:
	$(MAKE) -C fuzz volume FUZZ_SECONDS=$(FUZZ_SECONDS) LIBS="$(LDLIBS)" \
		FUZZ_ARGS=-runs=$(FUZZ_RUNS)

.PHONY: sanitize fuzz fuzz-volume

.PHONY: all check install uninstall clean
