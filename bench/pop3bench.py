#!/usr/bin/env python3
"""pop3-handler against popa3d and Dovecot, in one run (issue 4). Run as root.

    python3 bench/pop3bench.py            the full benchmark (make bench)
    BENCH_QUICK=1 python3 bench/pop3bench.py   small sizes, 2 repeats (make bench-quick)

Prints one table on stdout (progress goes to stderr) and exits 0 even when a
target is missed; it exits non-zero only when the benchmark itself could not run
(a server refused a session it must serve, a DELE that deleted nothing, ...).

Environment:
  BENCH_DIR           work dir: cached mailboxes, popa3d, logs (/var/tmp/pop3-bench)
  BENCH_REPEAT        runs of each scenario per server, medians reported (5; quick 2)
  BENCH_SCALE_REPEAT  runs per point of the scaling series (3; quick 1)
  BENCH_QUICK         1 for the small sizes
  BENCH_SCALING       0 to skip the scaling series and its plot
  BENCH_SEED          the generator's seed (4)
  HANDLER             the pop3-handler binary (./pop3-handler)
  BENCH_PLOT          where the scaling plot goes (bench/scaling.png; quick: BENCH_DIR)

What it sets up, and removes again at exit (also after a crash: the names are
recorded in BENCH_DIR/state.json and cleaned up by the next run):
  - two system users p3bNNNN with random passwords and home directories,
    and for each one spool per server, each an identical copy of the
    generated mailbox (the second user holds the 20-message mailbox while
    the first holds the 750 MB one, and their sessions alternate):
      popa3d   /var/mail/USER           (popa3d's fixed path)
      ours     /var/mail/USER.ours      (-m /var/mail/%u.ours)
      dovecot  /var/mail/USER.dovecot   (mail_location INBOX=...)
  - a PAM service /etc/pam.d/p3bNNNN, the first user's name (a copy of pam.d/pop3: common-auth and
    common-account, so pam_unix against /etc/shadow) for ours and Dovecot, and
    /etc/pam.d/popa3d (the Debian package's own file, same stack) unless one exists;
  - popa3d's user and /var/lib/popa3d when missing (popa3d's postinst makes them),
    and pop3-handler's pre-login user (README, privilege separation) when missing;
  - three listeners on 127.0.0.1: popa3d and pop3-handler each under
    systemd-socket-activate --inetd -a (one process per connection, as root),
    Dovecot's master (dovecot -F -c BENCH_DIR/run/dovecot.conf);
  - two more socket-activate listeners that run popa3d and ours under
    /usr/bin/time -f %M for peak RSS; Dovecot's pop3 process is polled instead.
"""

import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
GEN = os.path.join(HERE, "gen-bench-mbox.py")

QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
BENCH_DIR = os.environ.get("BENCH_DIR", "/var/tmp/pop3-bench")
REPEAT = int(os.environ.get("BENCH_REPEAT", "2" if QUICK else "5"))
SCALE_REPEAT = int(os.environ.get("BENCH_SCALE_REPEAT", "1" if QUICK else "3"))
SCALING = os.environ.get("BENCH_SCALING", "1") not in ("", "0")
SEED = int(os.environ.get("BENCH_SEED", "4"))
HANDLER = os.path.abspath(os.environ.get("HANDLER", os.path.join(TOP, "pop3-handler")))
PLOT = os.environ.get("BENCH_PLOT") or (os.path.join(BENCH_DIR, "scaling-quick.png") if QUICK
                                        else os.path.join(HERE, "scaling.png"))
RUN = os.path.join(BENCH_DIR, "run")
STATE = os.path.join(BENCH_DIR, "state.json")

# (messages, target bytes).  MAIN stays under popa3d's Debian limit of
# 200,000,000 bytes (MAX_MAILBOX_OPEN_BYTES); BIG and the 1 GB point do not.
if QUICK:
    MAIN, BIG, TINY = (2400, 18_000_000), (6_667, 50_000_000), (20, 150_000)
    SERIES = [(667, 5_000_000), (1_333, 10_000_000), MAIN, BIG]
else:
    MAIN, BIG, TINY = (24_000, 180_000_000), (100_000, 750_000_000), (20, 150_000)
    SERIES = [(1_333, 10_000_000), (6_667, 50_000_000), MAIN, BIG, (133_333, 1_000_000_000)]

SERVERS = ["ours", "popa3d", "dovecot"]
# The fixed cost of a session: logins per second with each number of
# clients at once, for LOGIN_SECONDS a run; PSS with IDLE sessions at once.
LOGIN_CLIENTS = [1, 8]
LOGIN_SECONDS = float(os.environ.get("BENCH_LOGIN_SECONDS", "1" if QUICK else "4"))
LOGIN_REPEAT = 1 if QUICK else 3
IDLE = 100
CRYPT = os.environ.get("BENCH_CRYPT", "SHA512")
POPA3D_LIMIT = 200_000_000


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, **kw)


# --- mailboxes ----------------------------------------------------------------

def gen_key():
    with open(GEN, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def mailbox(count, size):
    """The cached pristine mailbox for (count, size): (path, file size)."""
    d = os.path.join(BENCH_DIR, "mbox")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "n%d-b%d-s%d-g%s.mbox" % (count, size, SEED, gen_key()))
    if not os.path.exists(path):
        log("generating %s (%d messages, ~%d MB)" % (os.path.basename(path), count, size // 10**6))
        tmp = path + ".tmp"
        sh(sys.executable, GEN, "--count", str(count), "--size", str(size), "--seed", str(SEED),
           "-o", tmp)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    return path, os.path.getsize(path)


# --- the client ----------------------------------------------------------------

class SessionError(Exception):
    pass


CLIENT = os.path.join(BENCH_DIR, "pop3client")


def build_client():
    src = os.path.join(HERE, "pop3client.c")
    if not os.path.exists(CLIENT) or os.path.getmtime(CLIENT) < os.path.getmtime(src):
        sh(os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", CLIENT, src)


def session(port, cmds, check=True):
    """One pipelined POP3 session through bench/pop3client.c: returns (seconds,
    bytes received, last reply line).  Raises SessionError on a -ERR line or
    when the last line is not +OK (unless check is false: the floor)."""
    args = [CLIENT, str(port)]
    if cmds:
        path = os.path.join(RUN, "cmd-%s" % hashlib.sha1(cmds).hexdigest()[:16])
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(cmds)
        args.append(path)
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
    out = r.stdout.decode(errors="replace").strip()
    if r.returncode == 2 or not out:
        raise SessionError("client: %s %s" % (out, r.stderr.decode(errors="replace")))
    dt, nbytes, status, last = (out.split(" ", 3) + [""])[:4]
    if check and r.returncode != 0:
        raise SessionError("port %d: %s" % (port, last))
    return float(dt), int(nbytes), last


def raw_session(port, cmds, timeout=120):
    """A short session whose whole reply is returned as bytes (STAT checks)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(cmds)
    data = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return bytes(data)


def floor_server(port, path):
    """The floor: a server with no POP3 logic that sendfile()s the raw mailbox
    to every connection and closes."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    print("Listening", flush=True)
    while True:
        c, _ = ls.accept()
        with open(path, "rb") as f:
            try:
                c.sendfile(f)
            except OSError:
                pass
        c.close()


def rss_poll(master, outfile):
    """Polls the VmHWM of Dovecot's pop3 processes (children of master) until
    SIGTERM, then writes the largest in KiB."""
    best = {"kb": 0}

    def done(*_):
        with open(outfile, "w") as f:
            f.write("%d\n" % best["kb"])
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    while True:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/status" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            if "\nPPid:\t%d\n" % master not in st or not st.startswith("Name:\tpop3\n"):
                continue
            m = re.search(r"VmHWM:\s+(\d+) kB", st)
            if m:
                best["kb"] = max(best["kb"], int(m.group(1)))
        time.sleep(0.01)


# --- set-up and clean-up ----------------------------------------------------------

class Bench:
    def __init__(self):
        self.state = {"users": [], "sysusers": [], "files": [], "dirs": [], "pids": []}
        self.procs = []
        self.notes = []

    # Everything made is recorded first, so a killed run is cleaned next time.
    def record(self, kind, what):
        self.state[kind].append(what)
        with open(STATE + ".tmp", "w") as f:
            json.dump(self.state, f)
        os.rename(STATE + ".tmp", STATE)

    @staticmethod
    def cleanup_state(st):
        for pid in st.get("pids", []):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for u in reversed(st.get("users", [])):
            if subprocess.run(["getent", "passwd", u], stdout=subprocess.DEVNULL).returncode == 0:
                subprocess.run(["userdel", "-r", "-f", u], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        for u in reversed(st.get("sysusers", [])):
            subprocess.run(["userdel", u], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in st.get("files", []):
            for q in (p, p + ".lock"):
                try:
                    os.unlink(q)
                except OSError:
                    pass
        for d in reversed(st.get("dirs", [])):
            shutil.rmtree(d, ignore_errors=True)

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.state["pids"] = []
        self.cleanup_state(self.state)
        try:
            os.unlink(STATE)
        except OSError:
            pass

    def spawn(self, cmd, logname, wait_for=None, **kw):
        """Starts a long-running process; waits until its log shows wait_for."""
        lf = open(os.path.join(RUN, logname), "w")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        self.procs.append(p)
        self.record("pids", p.pid)
        if wait_for:
            for _ in range(100):
                with open(os.path.join(RUN, logname)) as f:
                    if wait_for in f.read():
                        break
                if p.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                raise SystemExit("%s did not start: see %s/%s" % (cmd[0], RUN, logname))
            if p.poll() is not None:
                raise SystemExit("%s exited: see %s/%s" % (cmd[0], RUN, logname))
        return p

    @staticmethod
    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p

    def wait_port(self, port):
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("nothing listens on port %d" % port)

    def setup(self):
        if os.path.exists(STATE):
            log("cleaning up after an earlier run that did not finish")
            with open(STATE) as f:
                self.cleanup_state(json.load(f))
            os.unlink(STATE)
        os.makedirs(BENCH_DIR, exist_ok=True)
        shutil.rmtree(RUN, ignore_errors=True)
        os.makedirs(RUN)
        os.chmod(BENCH_DIR, 0o755)
        os.chmod(RUN, 0o755)
        build_client()
        if not os.access(HANDLER, os.X_OK):
            raise SystemExit("no handler at %s (run make)" % HANDLER)

        # popa3d, from the Debian package, unpacked into the work dir.
        pdir = os.path.join(BENCH_DIR, "popa3d")
        self.popa3d = os.path.join(pdir, "root/usr/sbin/popa3d")
        if not os.path.exists(self.popa3d):
            os.makedirs(pdir, exist_ok=True)
            sh("apt-get", "-o", "APT::Sandbox::User=root", "download", "popa3d", cwd=pdir,
               stdout=subprocess.DEVNULL)
            deb = [f for f in os.listdir(pdir) if f.endswith(".deb")][0]
            sh("dpkg-deb", "-x", os.path.join(pdir, deb), os.path.join(pdir, "root"))
        # Each server's own unprivileged pre-login user, as its package or
        # README has it made: popa3d's postinst, pop3-handler's README (privsep).
        for name, home in (("popa3d", "/var/lib/popa3d"), ("pop3-handler", "/nonexistent")):
            if subprocess.run(["getent", "passwd", name], stdout=subprocess.DEVNULL).returncode:
                self.record("sysusers", name)
                sh("useradd", "--system", "--home-dir", home, "--no-create-home",
                   "--user-group", "--shell", "/usr/sbin/nologin", name)
        if not os.path.isdir("/var/lib/popa3d"):
            self.record("dirs", "/var/lib/popa3d")
            os.makedirs("/var/lib/popa3d", 0o755)
        if not os.path.exists("/etc/pam.d/popa3d"):
            self.record("files", "/etc/pam.d/popa3d")
            shutil.copy(os.path.join(pdir, "root/etc/pam.d/popa3d"), "/etc/pam.d/popa3d")

        # The bench users: real accounts with a home and a password in
        # /etc/shadow. The second holds the 20-message mailbox while the first
        # holds the 750 MB one, so that sessions on the two can alternate.
        self.accounts = [self.make_user(), self.make_user()]
        self.switch(self.accounts[0])
        self.svc = self.user
        self.record("files", "/etc/pam.d/" + self.svc)
        shutil.copy(os.path.join(TOP, "pam.d/pop3"), "/etc/pam.d/" + self.svc)
        u = self.user

        # Listeners.
        self.port = {}
        self.rss_port = {}
        sa = ["systemd-socket-activate", "--inetd", "-a", "-l"]
        ours = [HANDLER, "-s", self.svc, "-m", "/var/mail/%u.ours"]
        popa = [self.popa3d]
        # Ours with popa3d's unique-ids (-i popa3d, issue 14), on ours' spool:
        # the "open, cold, -i popa3d" row; no RSS listener.
        self.port["ours-popa3d"] = self.free_port()
        self.spawn(sa + ["127.0.0.1:%d" % self.port["ours-popa3d"]] + ours + ["-i", "popa3d"],
                   "ours-popa3d.log", "Listening on")
        self.listener = {}
        for name, cmd in (("ours", ours), ("popa3d", popa)):
            self.port[name] = self.free_port()
            self.listener[name] = self.spawn(sa + ["127.0.0.1:%d" % self.port[name]] + cmd,
                                             name + ".log", "Listening on").pid
            self.rss_port[name] = self.free_port()
            timed = ["/usr/bin/time", "-f", "%M", "-o", os.path.join(RUN, "rss-" + name)]
            self.spawn(sa + ["127.0.0.1:%d" % self.rss_port[name]] + timed + cmd,
                       name + "-rss.log", "Listening on")

        self.port["dovecot"] = self.free_port()
        conf = os.path.join(RUN, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(run=RUN, port=self.port["dovecot"], svc=self.svc))
        sh("dovecot", "-c", conf, "-n", stdout=open(os.path.join(RUN, "dovecot-n.txt"), "w"))
        self.dovecot = self.spawn(["dovecot", "-F", "-c", conf], "dovecot-master.log")
        self.wait_port(self.port["dovecot"])
        log("listening: %s; rss: %s; user %s, PAM service %s" % (
            self.port, self.rss_port, u, self.svc))

    def make_user(self):
        """A throwaway account: its name, password and a spool per server."""
        for i in range(100):
            u = "p3b%d" % (os.getpid() % 10000 + i)
            if subprocess.run(["getent", "passwd", u], stdout=subprocess.DEVNULL).returncode and \
                    not os.path.exists("/etc/pam.d/" + u):
                break
        self.record("users", u)
        sh("useradd", "-m", "-s", "/bin/sh", u)
        password = os.urandom(9).hex()
        # SHA-512 unless BENCH_CRYPT says otherwise: Debian 12's default,
        # yescrypt, costs every session of every server ~37 ms and 16 MiB
        # (pam_unix hashed twice per login here), which hides the mailbox.
        sh("chpasswd", "-c", CRYPT, input=("%s:%s\n" % (u, password)).encode())
        spool = {"popa3d": "/var/mail/" + u, "ours": "/var/mail/%s.ours" % u,
                 "dovecot": "/var/mail/%s.dovecot" % u}
        for p in spool.values():
            self.record("files", p)
            self.record("files", p + ".tmp")
        return {"user": u, "password": password, "spool": spool}

    def rehash(self, method):
        """The current account's password hashed again with method."""
        sh("chpasswd", "-c", method, input=("%s:%s\n" % (self.user, self.password)).encode())

    def switch(self, acct):
        """Makes acct the account (and its mailbox) that runs use."""
        if getattr(self, "acct", None) is not None:
            for k in ("pristine", "size", "count", "warm"):
                if hasattr(self, k):
                    self.acct[k] = getattr(self, k)
        self.acct = acct
        self.user, self.password, self.spool = acct["user"], acct["password"], acct["spool"]
        for k in ("pristine", "size", "count", "warm"):
            if k in acct:
                setattr(self, k, acct[k])

    # --- mailbox state ---------------------------------------------------------

    def restore(self, server):
        """A fresh copy of the pristine mailbox, mtime an hour ago, renamed into
        place: a new inode, as when the mailbox was replaced."""
        dst = self.spool[server]
        tmp = dst + ".tmp"
        shutil.copyfile(self.pristine, tmp)
        # On disk before the run: otherwise writeback of this copy lands in
        # the fsync of whichever server commits next (DELE took 2 to 4 s
        # instead of 0.3 to 1.3 s right after an unsynced copy).
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        pw = pwd.getpwnam(self.user)
        os.chown(tmp, pw.pw_uid, 8)  # mail
        os.chmod(tmp, 0o600)
        past = time.time() - 3600
        os.utime(tmp, (past, past))
        if server == "dovecot":
            # Its index describes the old file. Dovecot 2.3.19 resyncing a
            # replaced mbox with CRLF messages against a stale index failed
            # ("Sync failed for mbox ... now needs 18446744073709551615 bytes")
            # and its next session counted 2456 messages of 2400: start afresh.
            shutil.rmtree(os.path.join(pw.pw_dir, "mail/.imap"), ignore_errors=True)
        os.rename(tmp, dst)
        self.warm[server] = False

    def settle(self, timeout=30):
        """Waits until no bench user runs a process: every server's session
        (popa3d, ours, Dovecot's pop3) runs as the user once logged in, and
        may go on after the client has seen its last byte (Dovecot writes its
        index, ours removes a used journal), which must not land in the time
        of whichever server runs next."""
        uids = {pwd.getpwnam(a["user"]).pw_uid for a in self.accounts}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if os.stat("/proc/" + pid).st_uid in uids:
                        busy = True
                        break
                except OSError:
                    pass
            if not busy:
                return
            time.sleep(0.005)

    def cmd(self, *lines):
        return b"".join(l.encode() + b"\r\n" for l in
                        ("USER " + self.user, "PASS " + self.password) + lines)

    def stat(self, server, port=None):
        r = raw_session(port or self.port[server], self.cmd("STAT", "QUIT"))
        m = re.search(rb"\r?\n\+OK (\d+) (\d+)\r?\n", r)
        if not m:
            raise SessionError("%s: no STAT reply in %r" % (server, r[:500]))
        return int(m.group(1))

    def prime(self, server):
        """One untimed session, so the next one finds the mailbox warm (for
        Dovecot: index built, X-UID/X-IMAPbase written)."""
        n = self.stat(server)
        if n != self.count:
            raise SessionError("%s: STAT says %d messages, the mailbox has %d" % (server, n, self.count))
        self.warm[server] = True

    # --- one timed run ------------------------------------------------------

    def run(self, scen, server):
        """Brings the mailbox into the state scen needs, runs it once, returns
        the figure (seconds, or KiB for rss), or None when the server refuses."""
        if server == "popa3d" and self.size > POPA3D_LIMIT:
            return None
        if scen == "cold-popa3d" and server != "ours":
            return None
        if server == "floor":
            return session(self.floor_port, b"", check=False)[0]
        n = self.count
        cmds = {
            "cold": self.cmd("STAT", "QUIT"),
            "cold-popa3d": self.cmd("STAT", "QUIT"),
            "warm": self.cmd("STAT", "QUIT"),
            "uidl": self.cmd("UIDL", "QUIT"),
            "retr": self.cmd(*["RETR %d" % i for i in range(1, n + 1)], "QUIT"),
            "rss": self.cmd(*["RETR %d" % i for i in range(1, n + 1)], "QUIT"),
            "dele1": self.cmd("DELE 1", "QUIT"),
            "delelast": self.cmd("DELE %d" % n, "QUIT"),
            "afterdele": self.cmd("STAT", "QUIT"),
        }[scen]
        if scen.startswith("cold"):
            self.restore(server)
        elif scen.startswith("dele") or scen == "afterdele" or not self.warm[server]:
            self.restore(server)
            self.prime(server)
        if scen == "afterdele":
            # The open that follows a QUIT which deleted message 1: what the
            # next poll of a client that does not leave mail pays.
            self.settle()
            raw_session(self.port[server], self.cmd("DELE 1", "QUIT"))
        path = self.spool[server]
        before = os.stat(path)
        port = self.port["ours-popa3d" if scen == "cold-popa3d" else server]
        poller = None
        if scen == "rss":
            if server == "dovecot":
                out = os.path.join(RUN, "rss-dovecot")
                poller = subprocess.Popen([sys.executable, __file__, "rss-poll", str(self.dovecot.pid),
                                           out])
                time.sleep(0.2)
            else:
                port = self.rss_port[server]
                out = os.path.join(RUN, "rss-" + server)
            try:
                os.unlink(out)
            except OSError:
                pass
        self.settle()
        dt, nbytes, _ = session(port, cmds)
        if scen in ("retr", "rss") and nbytes < self.size - 2 * self.count - 200:
            raise SessionError("%s: RETR all sent %d bytes for a %d-byte mailbox" % (server, nbytes, self.size))
        # A cold run leaves the mailbox warm for the next scenario, but not
        # one under -i popa3d: its cache is of popa3d's ids, which a native
        # session does not use (the next one primes again).
        self.warm[server] = scen != "cold-popa3d"
        if scen.startswith("dele") or scen == "afterdele":
            left = self.stat(server)
            if left != n - 1:
                raise SessionError("%s: %s left %d messages of %d" % (server, scen, left, n))
            self.warm[server] = False
        elif not scen.startswith("cold"):
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns, after.st_ino) != \
                    (before.st_size, before.st_mtime_ns, before.st_ino):
                note = "%s rewrote the mailbox during a read-only %s session" % (server, scen)
                if note not in self.notes:
                    self.notes.append(note)
                    log("note: " + note)
                # Not the state the next run expects: start it from a fresh copy.
                self.warm[server] = False
        if scen == "rss":
            if poller:
                time.sleep(0.05)
                poller.terminate()
                poller.wait()
            for _ in range(100):
                if os.path.exists(out) and os.path.getsize(out) > 0:
                    break
                time.sleep(0.05)
            with open(out) as f:
                return int(f.read().split()[-1])
        return dt

    def use_mailbox(self, count, size):
        self.pristine, self.size = mailbox(count, size)
        self.count = count
        self.warm = {s: False for s in SERVERS}
        for s in SERVERS:
            self.restore(s)
        if getattr(self, "floor_proc", None):
            self.floor_proc.terminate()
            self.floor_proc.wait()
        self.floor_port = self.free_port()
        self.floor_proc = self.spawn([sys.executable, __file__, "floor-server", str(self.floor_port),
                                      self.pristine], "floor.log", "Listening")
        log("mailbox %s: %d messages, %d bytes" % (os.path.basename(self.pristine), count, self.size))

    def measure_pair(self, a, b, repeat):
        """Open warm on account a's mailbox and on b's, alternating session by
        session (and the servers in a rotating order), so that a slower spell of
        the machine lands on both. Returns ({server: [s]} for a, the same for b)."""
        ra, rb = {}, {}
        for r in range(repeat):
            order = SERVERS[r % len(SERVERS):] + SERVERS[:r % len(SERVERS)]
            for server in order:
                for acct, res in ((a, ra), (b, rb)):
                    self.switch(acct)
                    res.setdefault(server, []).append(self.run("warm", server))
            log("repeat %d/%d done" % (r + 1, repeat))
        return ra, rb

    def measure(self, scenarios, repeat, servers=SERVERS):
        """Each scenario `repeat` times on each server, interleaved: per repeat,
        per scenario, every server in an order that rotates. Returns
        {(scen, server): [figures]}."""
        res = {}
        for r in range(repeat):
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for scen in scenarios:
                srv = order + (["floor"] if scen == "retr" else [])
                for server in srv:
                    v = self.run(scen, server)
                    res.setdefault((scen, server), []).append(v)
            log("repeat %d/%d done: %s" % (r + 1, repeat, ", ".join(
                "%s/%s=%s" % (k[0], k[1], fmt(v[-1], "MiB" if k[0] == "rss" else "s")) for k, v in sorted(res.items()))))
        return res

    def logins(self, server, clients, seconds):
        """Logins per second: `clients` threads, each running USER PASS STAT
        QUIT sessions back to back on the current account for `seconds`.
        A session that gets -ERR or no signing-off line fails the run."""
        import threading
        cmds = self.cmd("STAT", "QUIT")
        port = self.port[server]
        done, failed = [0], []
        stop = time.monotonic() + seconds

        def worker():
            while time.monotonic() < stop:
                try:
                    r = raw_session(port, cmds, timeout=60)
                except OSError as e:
                    failed.append(repr(e))
                    return
                if b"\n-ERR" in r or not r.rstrip().split(b"\n")[-1].startswith(b"+OK"):
                    failed.append(r[-200:])
                    return
                done[0] += 1

        self.settle()
        t0 = time.monotonic()
        ts = [threading.Thread(target=worker) for _ in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.monotonic() - t0
        if failed:
            raise SessionError("%s: %d clients at once: %s" % (server, clients, failed[0]))
        return done[0] / dt

    def tree_pss(self, root):
        """KiB of PSS of root and every process below it."""
        parent = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        parent[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        tree, grew = {root}, True
        while grew:
            grew = False
            for pid, pp in parent.items():
                if pp in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        total = 0
        for pid in tree:
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    for l in f:
                        if l.startswith("Pss:"):
                            total += int(l.split()[1])
            except OSError:
                pass
        return total, len(tree)

    def idle_pss(self, server, n):
        """PSS per idle logged-in session: n clients log in and STAT, then
        wait; the server's process tree is measured against itself before.
        Returns (KiB per session, processes per session)."""
        root = {"ours": self.listener["ours"], "popa3d": self.listener["popa3d"],
                "dovecot": self.dovecot.pid}[server]
        self.settle()
        before, procs0 = self.tree_pss(root)
        socks = []
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", self.port[server]), timeout=60)
                s.sendall(self.cmd("STAT"))
                socks.append(s)
            for s in socks:
                got = b""
                while got.count(b"\n") < 4:
                    b = s.recv(4096)
                    if not b:
                        raise SessionError("%s: an idle session ended: %r" % (server, got))
                    got += b
                if b"-ERR" in got:
                    raise SessionError("%s: idle session: %r" % (server, got))
            time.sleep(0.5)
            after, procs1 = self.tree_pss(root)
        finally:
            for s in socks:
                try:
                    s.sendall(b"QUIT\r\n")
                    s.close()
                except OSError:
                    pass
        return (after - before) / n, (procs1 - procs0) / n

    def wc_l(self):
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            sh("wc", "-l", self.pristine, stdout=subprocess.DEVNULL)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)


DOVECOT_CONF = """\
# Written by bench/pop3bench.py: Dovecot's pop3 on a loopback port, no TLS,
# PAM (the same service file as pop3-handler) and the system passwd, the
# bench user's mbox INBOX in /var/mail. Everything else is Dovecot's default.
base_dir = {run}/dovecot
state_dir = {run}/dovecot-state
log_path = {run}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = mbox:~/mail:INBOX=/var/mail/%u.dovecot
mail_privileged_group = mail
default_internal_user = dovecot
default_login_user = dovenull
# Raised for the 100 idle sessions of one user (defaults: 100 processes a
# service, 10 connections a user and address).
default_process_limit = 300
default_client_limit = 1000
protocol pop3 {{
  mail_max_userip_connections = 300
}}
passdb {{
  driver = pam
  args = {svc}
}}
userdb {{
  driver = passwd
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


# --- reporting -----------------------------------------------------------------

def med(v):
    if not v or any(x is None for x in v):
        return None
    return statistics.median(v)


def fmt(v, unit="s"):
    if v is None:
        return "-"
    if unit == "MiB":
        return "%.1f MiB" % (v / 1024.0)
    if unit == "x":
        return "%.2fx" % v
    if unit == "/s":
        return "%.0f/s" % v
    if unit == "KiB":
        return "%.0f KiB" % v
    if v >= 10:
        return "%.1f s" % v
    if v >= 1:
        return "%.2f s" % v
    return "%.1f ms" % (v * 1000)


def table(rows):
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (x + 2) for x in w) + "|")
    return "\n".join(lines)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def row(label, ours, popa, dove, target=None, limit=None, unit="s", higher=False):
    """target: 'popa3d' or 'dovecot' (ours/that peer <= limit, or >= limit
    where higher is better: a rate) or None."""
    rp, rd = ratio(ours, popa), ratio(ours, dove)
    if target is None:
        tgt, met = "", ""
    else:
        r = rp if target == "popa3d" else rd
        tgt = "%s %.2f x %s" % (">=" if higher else "<=", limit, target)
        met = "n/a" if r is None else ("yes" if (r >= limit if higher else r <= limit) else "NO")
    return [label, fmt(ours, unit), fmt(popa, unit), fmt(dove, unit), fmt(rp, "x"), fmt(rd, "x"),
            tgt, met]


def plot(series, path):
    """series: {server: [(MB, open s, retr s)]} plus 'floor'."""
    dat = os.path.join(RUN, "scaling.dat")
    names = ["ours", "popa3d", "dovecot", "floor"]
    with open(dat, "w") as f:
        for name in names:
            f.write("# %s: MB open_warm_s retr_all_s\n" % name)
            for mb, o, r in series.get(name, []):
                f.write("%g %s %s\n" % (mb, "NaN" if o is None else "%.6f" % o,
                                        "NaN" if r is None else "%.6f" % r))
            f.write("\n\n")
    titles = {"ours": "pop3-handler", "popa3d": "popa3d (refuses > 200 MB)",
              "dovecot": "Dovecot pop3 (mbox)", "floor": "floor: raw file, no server"}
    gp = ["set terminal pngcairo size 1100,480 font 'sans,10'" if has_cairo() else
          "set terminal png size 1100,480",
          "set output '%s'" % path,
          "set logscale xy", "set xrange [5:2000]", "set grid", "set key top left",
          "set xlabel 'mailbox size (MB)'", "set ylabel 'session time (s), median'",
          "set multiplot layout 1,2 title 'pop3-handler scaling, %s'" % time.strftime("%Y-%m-%d"),
          "set title 'open, warm (USER PASS STAT QUIT)'",
          "plot " + ", ".join("'%s' index %d using 1:2 with linespoints title '%s'" %
                              (dat, i, titles[n]) for i, n in enumerate(names[:3])),
          "set title 'RETR of every message'",
          "plot " + ", ".join("'%s' index %d using 1:3 with linespoints title '%s'" %
                              (dat, i, titles[n]) for i, n in enumerate(names)),
          "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(gp).encode(), check=True)


def has_cairo():
    r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True)
    return b"pngcairo" in r.stdout + r.stderr


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "floor-server":
        floor_server(int(sys.argv[2]), sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "rss-poll":
        rss_poll(int(sys.argv[2]), sys.argv[3])
        return 0
    if os.geteuid() != 0:
        print("pop3bench: run as root (it makes a system user, /var/mail spools and PAM services)",
              file=sys.stderr)
        return 1

    b = Bench()

    def on_signal(sig, _):
        raise SystemExit(128 + sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t_start = time.time()
    load0 = os.getloadavg()
    try:
        b.setup()
        R = {}
        # The main size: every scenario.
        b.use_mailbox(*MAIN)
        main_size = b.size
        res = b.measure(["cold", "cold-popa3d", "warm", "uidl", "retr", "dele1", "delelast",
                         "afterdele"], REPEAT)
        res.update(b.measure(["rss"], min(REPEAT, 2)))
        R["main"] = res
        wc = b.wc_l()
        # The big size against a 20-message mailbox, open warm: the second
        # account holds the small one, and the sessions alternate.
        b.switch(b.accounts[1])
        b.use_mailbox(*TINY)
        b.switch(b.accounts[0])
        b.use_mailbox(*BIG)
        big_size = b.size
        gb, tb = b.measure_pair(b.accounts[0], b.accounts[1], REPEAT)
        R["big"] = {("warm", s): v for s, v in gb.items()}
        R["tiny"] = {("warm", s): v for s, v in tb.items()}
        # The fixed cost of a session (issue 16), on the small mailbox:
        # logins per second with N clients at once, the servers in turn,
        # and the memory of IDLE sessions logged in at once.
        b.switch(b.accounts[1])
        for s in SERVERS:
            b.restore(s)
            b.prime(s)
        lg = {}
        for r in range(LOGIN_REPEAT):
            order = SERVERS[r % len(SERVERS):] + SERVERS[:r % len(SERVERS)]
            for n in LOGIN_CLIENTS:
                for server in order:
                    lg.setdefault(("logins%d" % n, server), []).append(
                        b.logins(server, n, LOGIN_SECONDS))
            log("logins repeat %d/%d done: %s" % (r + 1, LOGIN_REPEAT, ", ".join(
                "%s/%s=%.0f/s" % (k[0], k[1], v[-1]) for k, v in sorted(lg.items()))))
        # The same with a yescrypt hash, Debian 12's default for new
        # passwords, unless the whole run uses it already: 8 clients.
        if CRYPT != "YESCRYPT":
            b.rehash("YESCRYPT")
            for r in range(LOGIN_REPEAT):
                order = SERVERS[r % len(SERVERS):] + SERVERS[:r % len(SERVERS)]
                for server in order:
                    lg.setdefault(("yescrypt8", server), []).append(
                        b.logins(server, 8, LOGIN_SECONDS))
            b.rehash(CRYPT)
            log("yescrypt logins: %s" % ", ".join(
                "%s=%.0f/s" % (s, med(lg[("yescrypt8", s)])) for s in SERVERS))
        for server in SERVERS:
            kib, procs = b.idle_pss(server, IDLE)
            lg[("pss", server)] = [kib]
            lg[("procs", server)] = [procs]
            log("%d idle sessions of %s: %.0f KiB PSS and %.2f processes each" % (
                IDLE, server, kib, procs))
        R["cost"] = lg
        b.switch(b.accounts[0])
        series = {}

        def point(res, size):
            for s in SERVERS + ["floor"]:
                o = med(res.get(("warm", s)))
                r = med(res.get(("retr", s)))
                if o is not None or r is not None:
                    series.setdefault(s, []).append((size / 1e6, o, r))

        if SCALING:
            R["big"].update(b.measure(["retr"], SCALE_REPEAT))
            for count, size in SERIES:
                if (count, size) == MAIN:
                    point(R["main"], main_size)
                elif (count, size) == BIG:
                    point(R["big"], big_size)
                else:
                    b.use_mailbox(count, size)
                    point(b.measure(["warm", "retr"], SCALE_REPEAT), b.size)
                for s in SERVERS:
                    try:
                        os.unlink(b.spool[s])
                    except OSError:
                        pass
            for s in series:
                series[s].sort()
            plot(series, PLOT)
            with open(os.path.join(BENCH_DIR, "scaling.json"), "w") as f:
                json.dump(series, f)
    except SessionError as e:
        log("benchmark failed: %s" % e)
        return 1
    finally:
        b.cleanup()

    m, t, g = R["main"], R["tiny"], R["big"]

    def M(res, scen, s):
        return med(res.get((scen, s)))

    mb = main_size / 1e6
    rows = [["scenario (median of %d)" % REPEAT, "ours", "popa3d", "dovecot", "ours/popa3d",
             "ours/dovecot", "target", "met?"]]
    rows.append(row("open, cold (%.0f MB, %d msgs)" % (mb, MAIN[0]),
                    M(m, "cold", "ours"), M(m, "cold", "popa3d"), M(m, "cold", "dovecot"),
                    "popa3d", 0.60))
    # -i popa3d: MD5 over a few header lines, against the native scan's
    # XXH3 (issue 14); the ours/popa3d column compares it with popa3d itself.
    # No target of its own: what it costs is the ratio below.
    rows.append(row("open, cold, -i popa3d", M(m, "cold-popa3d", "ours"), M(m, "cold", "popa3d"),
                    M(m, "cold", "dovecot")))
    cp = ratio(M(m, "cold-popa3d", "ours"), M(m, "cold", "ours"))
    rows.append(["open cold, -i popa3d / native", fmt(cp, "x"), "", "", "", "", "", ""])
    rows.append(row("open, warm", M(m, "warm", "ours"), M(m, "warm", "popa3d"),
                    M(m, "warm", "dovecot")))
    rows.append(row("UIDL listing, warm", M(m, "uidl", "ours"), M(m, "uidl", "popa3d"),
                    M(m, "uidl", "dovecot"), "dovecot", 0.75))
    rows.append(row("RETR all", M(m, "retr", "ours"), M(m, "retr", "popa3d"),
                    M(m, "retr", "dovecot"), "popa3d", 0.45))
    fl = M(m, "retr", "floor")
    r_fl = [ratio(M(m, "retr", s), fl) for s in SERVERS]
    rows.append(["RETR all / floor", fmt(r_fl[0], "x"), fmt(r_fl[1], "x"), fmt(r_fl[2], "x"),
                 "", "", "ours <= 1.50 x floor",
                 "n/a" if r_fl[0] is None else ("yes" if r_fl[0] <= 1.5 else "NO")])
    rows.append(row("DELE 1 + QUIT", M(m, "dele1", "ours"), M(m, "dele1", "popa3d"),
                    M(m, "dele1", "dovecot"), "popa3d", 1.0))
    rows.append(row("DELE last + QUIT", M(m, "delelast", "ours"), M(m, "delelast", "popa3d"),
                    M(m, "delelast", "dovecot"), "popa3d", 0.60))
    rows.append(row("open after DELE 1 + QUIT", M(m, "afterdele", "ours"), M(m, "afterdele", "popa3d"),
                    M(m, "afterdele", "dovecot")))
    ad = ratio(M(m, "afterdele", "ours"), M(m, "warm", "ours"))
    rows.append(["open after a deleting QUIT / open warm", fmt(ad, "x"), "", "", "", "", "ours <= 1.20",
                 "n/a" if ad is None else ("yes" if ad <= 1.2 else "NO")])
    rows.append(row("peak RSS, RETR all", M(m, "rss", "ours"), M(m, "rss", "popa3d"),
                    M(m, "rss", "dovecot"), "popa3d", 0.5, unit="MiB"))
    rows.append(["floor: raw file via the client, no server", fmt(fl), "", "", "", "", "", ""])
    rows.append(["wc -l on the file", fmt(wc), "", "", "", "", "", ""])
    gw = [M(g, "warm", s) for s in SERVERS]
    tw = [M(t, "warm", s) for s in SERVERS]
    rows.append(row("open, warm (%.0f MB, %d msgs)" % (big_size / 1e6, BIG[0]), *gw))
    rows.append(row("open, warm (%d msgs)" % TINY[0], *tw))
    rb = [ratio(gw[i], tw[i]) for i in range(3)]
    rows.append(["open warm, %.0f MB / %d msgs" % (big_size / 1e6, TINY[0]), fmt(rb[0], "x"),
                 fmt(rb[1], "x"), fmt(rb[2], "x"), "", "", "ours <= 1.20",
                 "n/a" if rb[0] is None else ("yes" if rb[0] <= 1.2 else "NO")])
    c = R["cost"]
    for n in LOGIN_CLIENTS:
        rows.append(row("logins/s, %d client%s at once (%d msgs)" % (n, "" if n == 1 else "s", TINY[0]),
                        *[M(c, "logins%d" % n, s) for s in SERVERS],
                        target="popa3d", limit=1.25, unit="/s", higher=True))
    if ("yescrypt8", "ours") in c:
        rows.append(row("logins/s, 8 clients at once, yescrypt", *[M(c, "yescrypt8", s) for s in SERVERS],
                        unit="/s", higher=True))
    rows.append(row("PSS per idle session, %d at once" % IDLE, *[M(c, "pss", s) for s in SERVERS],
                    target="popa3d", limit=1.0, unit="KiB"))
    rows.append(["processes per idle session"] + ["%.2f" % M(c, "procs", s) for s in SERVERS] +
                ["", "", "", ""])
    print(table(rows))
    with open(os.path.join(BENCH_DIR, "table.txt"), "w") as f:
        f.write(table(rows) + "\n")
    with open(os.path.join(BENCH_DIR, "results.json"), "w") as f:
        json.dump({"%s/%s/%s" % (k, sc, s): v for k, res in R.items() for (sc, s), v in res.items()},
                  f, indent=1)
    log("popa3d refuses mailboxes over %d bytes (Debian's MAX_MAILBOX_OPEN_BYTES): '-' above that"
        % POPA3D_LIMIT)
    for n in b.notes:
        log("note: " + n)
    if SCALING:
        log("scaling plot: %s" % PLOT)
    log("load average (1, 5, 15 min) at start %s, at end %s on %d CPUs: above the CPU count,"
        " other work was competing and the figures are noisier" % (
            "/".join("%.1f" % x for x in load0), "/".join("%.1f" % x for x in os.getloadavg()),
            os.cpu_count()))
    log("took %.0f s; raw figures in %s/results.json" % (time.time() - t_start, BENCH_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
