/*
 * pop3-handler-keeper: the dotlock keeper (dotlock.c) as a program of its
 * own. pop3-handler, started as root, runs it from beside itself at a login
 * whose spool needs it, with the keeper's socket on KEEPER_FD. Linked
 * statically and holding only the keeper's code, it costs an idle session a
 * few pages of its own, where a forked copy of the handler kept the
 * originals of every page that the session wrote later. It is started as
 * root and told the user at once; it is of no use to run by hand.
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dotlock.h"

int main(void)
{
	struct stat st;

	if (geteuid() != 0 || fstat(KEEPER_FD, &st) || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, KEEPER_NAME ": pop3-handler runs this, as "
		    "root, with its socket on descriptor %d\n", KEEPER_FD);
		return 2;
	}
	/* Run from /proc/self/fd/N, we would be called "N" in ps. */
	prctl(PR_SET_NAME, KEEPER_NAME, 0, 0, 0);
	dotlock_serve(KEEPER_FD);
}
