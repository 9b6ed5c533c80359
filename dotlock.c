/*
 * The dotlock keeper. liblockfile makes a lock next to the mailbox itself
 * when it may write there, and otherwise runs its set-group-ID helper,
 * dotlockfile, once to lock and once to unlock: a fork and an exec each, a
 * session's largest fixed cost after PAM. Started as root, we start one
 * small process instead: its own static program (keeper.c), run at a login
 * that needs it where it is installed beside us, else a copy of us forked
 * before PAM while we are small, to wait until the user is known. It then
 * has the user's uid and only the helper's group: it makes and removes that
 * one lock on request, over a socket, with the checks dotlockfile makes (the
 * mailbox a regular file of the user's, in the directory it started in). It
 * parses nothing of the client's, and goes when the session does, taking its
 * lock with it.
 *
 * Where the spool is on a file system other hosts share, the pid in a lock
 * may be a live process on another host: liblockfile's manual forbids L_PID
 * there. Such a lock holds no pid, is stale only once 5 minutes old (by the
 * file server's clock, as liblockfile reads it), and is touched while held.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <lockfile.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dotlock.h"
#include "params.h"

static int keeper = -1;		/* our end of the keeper's socket */
static int program = -1;	/* the keeper's program, to run at the login */
static pid_t keeper_pid;
static char *kept;		/* the lock it keeps */
static enum dotlock_share share = DOTLOCK_DETECT;
static char *touching;		/* a lock of ours to touch, without a keeper */
static struct timespec touched;	/* when it was made or last touched */

struct answer {
	int status;		/* liblockfile's */
	int err;		/* errno, on a failure */
};

void dotlock_set_share(enum dotlock_share how)
{
	share = how;
}

/*
 * The flags for a lock named name: L_PID on a local file system, none on a
 * shared one (by f_type: NFS, SMB and CIFS, AFS, Coda, Ceph, 9P, Lustre,
 * GPFS, GlusterFS and the like through FUSE, cluster file systems). When the
 * file system cannot be told, shared: the pid would then delete a live lock,
 * while age only keeps a dead one 5 minutes.
 */
static int lock_flags(const char *name)
{
	const char *slash = strrchr(name, '/');
	char dir[PATH_MAX];
	struct statfs fs;

	if (share != DOTLOCK_DETECT)
		return share == DOTLOCK_LOCAL ? L_PID : 0;
	if (!slash)
		strcpy(dir, ".");
	else if ((size_t)(slash - name) < sizeof(dir)) {
		memcpy(dir, name, slash == name ? 1 : slash - name);
		dir[slash == name ? 1 : slash - name] = '\0';
	} else
		return 0;
	if (statfs(dir, &fs))
		return 0;
	switch ((unsigned long)fs.f_type) {
	case 0x6969:		/* NFS */
	case 0x517b:		/* SMB */
	case 0xff534d42:	/* CIFS */
	case 0xfe534d42:	/* SMB2 */
	case 0x5346414f:	/* AFS */
	case 0x6b414653:	/* kAFS */
	case 0x73757245:	/* Coda */
	case 0x00c36400:	/* Ceph */
	case 0x01021997:	/* 9P */
	case 0x0bd00bd0:	/* Lustre */
	case 0x47504653:	/* GPFS */
	case 0x65735546:	/* FUSE */
	case 0x7461636f:	/* OCFS2 */
	case 0x01161970:	/* GFS2 */
	case 0x564c:		/* NCP */
		return 0;
	}
	return L_PID;
}

/* The keeper's checks before each lock, as dotlockfile's: the directory is
 * the one it started in, and the mailbox there a regular file of ours. */
static int fit(const struct stat *dir, const char *mailbox)
{
	struct stat here, st;

	if (stat(".", &here) || here.st_dev != dir->st_dev ||
	    here.st_ino != dir->st_ino)
		return 0;
	return !lstat(mailbox, &st) && S_ISREG(st.st_mode) &&
	    st.st_uid == getuid();
}

/* The keeper: 'L' locks, 'U' unlocks, EOF ends it (unlocking first). A
 * lock without a pid is touched every DOTLOCK_TOUCH seconds it is held,
 * whatever the session is doing meanwhile. */
static void __attribute__((noreturn)) keep(int fd, const struct stat *dir,
    const char *mailbox, const char *lock)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	struct answer a;
	int held = 0, flags = 0;
	char c;

	for (;;) {
		int n = poll(&pfd, 1, held && !flags ? DOTLOCK_TOUCH * 1000 :
		    -1);

		if (n == 0) {
			lockfile_touch(lock);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || read(fd, &c, 1) != 1)
			break;
		memset(&a, 0, sizeof(a));
		if (c == 'L' && fit(dir, mailbox)) {
			flags = lock_flags(lock);
			a.status = lockfile_create(lock, 0, flags);
			held = a.status == L_SUCCESS;
		} else if (c == 'L') {
			a.status = L_ERROR;
			errno = EPERM;
		} else if (c == 'U') {
			a.status = lockfile_remove(lock) ? L_ERROR : L_SUCCESS;
			held = 0;
		} else
			break;
		a.err = errno;
		if (write(fd, &a, sizeof(a)) != sizeof(a))
			break;
	}
	if (held)
		lockfile_remove(lock);
	_exit(0);
}

/* What the keeper is told once the user is known: whose it is, its group,
 * and the directory (as stat'ed by the root part) and name of the mailbox. */
struct order {
	uid_t uid;
	gid_t gid;
	enum dotlock_share share;	/* -F */
	dev_t dev;
	ino_t ino;
	char dir[PATH_MAX];
	char base[NAME_MAX + 1];
};

/* The keeper, waiting as root for its order (or EOF: no login, or no lock
 * needed), then the user with the helper's group only, in the directory. */
void dotlock_serve(int fd)
{
	struct sigaction sa;
	struct order o;
	struct stat dir;
	char lock[NAME_MAX + sizeof(".lock")];

	/* The client is not ours to hold open, nor any other descriptor;
	 * the session's signals are not ours to die of: EOF ends us. */
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	close(STDERR_FILENO);
	if (fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, fd - 1, 0);
	close_range(fd + 1, ~0U, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	if (recv(fd, &o, sizeof(o), MSG_WAITALL) != sizeof(o) || o.uid == 0 ||
	    !memchr(o.dir, '\0', sizeof(o.dir)) ||
	    !memchr(o.base, '\0', sizeof(o.base)))
		_exit(0);
	share = o.share;
	snprintf(lock, sizeof(lock), "%s.lock", o.base);
	if (chdir(o.dir) || stat(".", &dir) || dir.st_dev != o.dev ||
	    dir.st_ino != o.ino || setgroups(1, &o.gid) || setgid(o.gid) ||
	    setuid(o.uid) || getuid() != o.uid || geteuid() != o.uid ||
	    getegid() != o.gid || setuid(0) == 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		_exit(1);
	keep(fd, &dir, o.base, lock);
}

/*
 * The keeper's own program, KEEPER_NAME beside ours, opened for
 * dotlock_keeper to run. Root runs it, so it must be a regular file of
 * root's that no one else may write, as ours is. Returns its descriptor
 * (close-on-exec, never KEEPER_FD), or -1 when it is not there or fails the
 * check (logged).
 */
static int keeper_program(void)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n;
	char *slash;
	int exe;

	n = readlink("/proc/self/exe", path, sizeof(path) -
	    sizeof(KEEPER_NAME));
	if (n <= 0 || !(slash = memrchr(path, '/', n)))
		return -1;
	strcpy(slash + 1, KEEPER_NAME);
	if ((exe = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			syslog(LOG_ERR, "dotlock keeper: %s: %m", path);
		return -1;
	}
	if (fstat(exe, &st) || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		syslog(LOG_ERR, "dotlock keeper: %s is not a file of root's "
		    "that only root may write: not run", path);
		close(exe);
		return -1;
	}
	if (exe == KEEPER_FD) {	/* the dup2 of the spawn would replace it */
		int moved = fcntl(exe, F_DUPFD_CLOEXEC, KEEPER_FD + 1);

		close(exe);
		exe = moved;
	}
	return exe;
}

/*
 * Runs the program open on exe (by its descriptor, as fexecve does) with
 * the socket fd on KEEPER_FD and an empty environment, spawned without a
 * copy of us (vfork); of our other descriptors only the client's are not
 * close-on-exec, and it closes them first. Returns its pid, or -1 (logged).
 */
static pid_t keeper_spawn(int exe, int fd)
{
	static char *const argv[] = { KEEPER_NAME, NULL }, *const envp[] = {
		NULL
	};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char path[sizeof("/proc/self/fd/") + 12];
	sigset_t none;
	pid_t pid = -1;
	int err;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", exe);
	sigemptyset(&none);
	if ((err = posix_spawn_file_actions_init(&fa)) == 0) {
		if ((err = posix_spawnattr_init(&attr)) == 0) {
			if (!(err = posix_spawn_file_actions_adddup2(&fa, fd,
			    KEEPER_FD)) &&
			    !(err = posix_spawnattr_setflags(&attr,
			    POSIX_SPAWN_SETSIGMASK)) &&
			    !(err = posix_spawnattr_setsigmask(&attr, &none)))
				err = posix_spawn(&pid, path, &fa, &attr, argv,
				    envp);
			posix_spawnattr_destroy(&attr);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	if (err) {
		errno = err;
		syslog(LOG_ERR, "dotlock keeper: " KEEPER_NAME ": %m");
		return -1;
	}
	return pid;
}

/*
 * The keeper's program is found now and run at the login that needs it
 * (dotlock_keeper): a failed login, or a spool that needs no helper, costs
 * no process. Without the program, the keeper is a copy of us, forked now
 * while we are small (it holds the originals of every page that we write
 * later), to wait for the login.
 */
int dotlock_standby(void)
{
	int sv[2];
	pid_t pid;

	if (geteuid() != 0 || (program = keeper_program()) >= 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		syslog(LOG_ERR, "dotlock keeper: socketpair: %m");
		return -1;
	}
	if ((pid = fork()) < 0) {
		syslog(LOG_ERR, "dotlock keeper: fork: %m");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0)
		dotlock_serve(sv[1]);
	close(sv[1]);
	keeper = sv[0];
	keeper_pid = pid;
	return 0;
}

void dotlock_forget(void)
{
	if (keeper >= 0)
		close(keeper);
	keeper = -1;
	if (program >= 0)
		close(program);
	program = -1;
}

/* Runs the keeper's program for the login. Returns 0, or -1 (logged). */
static int keeper_start(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		syslog(LOG_ERR, "dotlock keeper: socketpair: %m");
		return -1;
	}
	pid = keeper_spawn(program, sv[1]);
	close(sv[1]);
	close(program);
	program = -1;
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	keeper = sv[0];
	keeper_pid = pid;
	return 0;
}

/* Ends the keeper and waits for it. */
static void keeper_end(void)
{
	close(keeper);
	keeper = -1;
	while (waitpid(keeper_pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int dotlock_keeper(const char *path, uid_t uid)
{
	const char *base = strrchr(path, '/');
	struct stat helper, dir;
	struct order o;

	memset(&o, 0, sizeof(o));
	if ((keeper < 0 && program < 0) || !base || base == path ||
	    (size_t)(base - path) >= sizeof(o.dir) ||
	    strlen(base + 1) >= sizeof(o.base))
		goto none;
	memcpy(o.dir, path, base - path);
	strcpy(o.base, base + 1);
	/* liblockfile's own test: only a group-writable directory of the
	 * helper's set-group-ID group needs the helper. */
	if (stat(DOTLOCK_HELPER, &helper) || !(helper.st_mode & S_ISGID) ||
	    stat(o.dir, &dir) || !S_ISDIR(dir.st_mode) ||
	    dir.st_gid != helper.st_gid || !(dir.st_mode & S_IWGRP) ||
	    (dir.st_mode & S_IWOTH) ||
	    (dir.st_uid == uid && (dir.st_mode & S_IWUSR)) || uid == 0)
		goto none;
	o.uid = uid;
	o.gid = helper.st_gid;
	o.share = share;
	o.dev = dir.st_dev;
	o.ino = dir.st_ino;
	if (keeper < 0 && keeper_start())
		return -1;
	if (!(kept = malloc(strlen(path) + sizeof(".lock"))) ||
	    send(keeper, &o, sizeof(o), MSG_NOSIGNAL) != sizeof(o)) {
		syslog(LOG_ERR, "dotlock keeper: cannot start it: %m");
		free(kept);
		kept = NULL;
		keeper_end();
		return -1;
	}
	sprintf(kept, "%s.lock", path);
	syslog(LOG_DEBUG, "dotlock keeper for %s (group %lu)", kept,
	    (unsigned long)o.gid);
	return 1;
none:
	if (keeper >= 0)	/* the keeper waiting is not needed */
		keeper_end();
	dotlock_forget();	/* nor its program */
	return 0;
}

/* One request to the keeper. Returns its status, or -1 when it is gone. */
static int ask(char c)
{
	struct answer a;

	if (write(keeper, &c, 1) != 1 || read(keeper, &a, sizeof(a)) !=
	    sizeof(a)) {
		syslog(LOG_ERR, "dotlock keeper gone");
		close(keeper);
		keeper = -1;
		errno = EIO;
		return -1;
	}
	errno = a.err;
	return a.status;
}

/* Without a keeper (or once it is gone), liblockfile does it all. */
int dotlock_create(const char *name)
{
	int r, flags;

	if (keeper >= 0 && kept && !strcmp(name, kept) &&
	    (r = ask('L')) >= 0)
		return r;
	flags = lock_flags(name);
	r = lockfile_create(name, 0, flags);
	if (r == L_SUCCESS && !flags) {
		free(touching);
		if ((touching = strdup(name)))
			clock_gettime(CLOCK_MONOTONIC_COARSE, &touched);
	}
	return r;
}

int dotlock_remove(const char *name)
{
	int r;

	if (touching && !strcmp(name, touching)) {
		free(touching);
		touching = NULL;
	}
	if (keeper >= 0 && kept && !strcmp(name, kept) &&
	    (r = ask('U')) >= 0)
		return r == L_SUCCESS ? 0 : -1;
	return lockfile_remove(name);
}

void dotlock_refresh(void)
{
	struct timespec now;

	if (!touching || clock_gettime(CLOCK_MONOTONIC_COARSE, &now) ||
	    now.tv_sec - touched.tv_sec < DOTLOCK_TOUCH)
		return;
	if (lockfile_touch(touching))
		syslog(LOG_ERR, "%s: cannot touch: %m", touching);
	touched = now;
}

void dotlock_done(void)
{
	if (keeper < 0)
		return;
	/* A keeper with a lock removes it before it goes: the next session
	 * must not find it. One still waiting holds nothing. */
	if (kept)
		keeper_end();
	else
		dotlock_forget();
}
