/* exec_client - a plain-TCP client that hands its connection to new
 * programs in the ways Python cannot express.  Knows nothing about TLS.
 *
 *   exec_client HOST PORT MODE
 *
 * Exec modes (execl execlp execle execv execvp execvpe fexecve execveat):
 * connect, send "line1 from the parent\n" and read its echo, make the socket
 * inheritable (fcntl F_SETFD 0), vfork, and in the child exec with that
 * function
 *     sh -c 'printf PLAINTEXT-LEAK >&FD; echo "args:$0:$1:${TLSSHIM_EXEC_TEST-unset}"' sh-name arg1
 * (execle and execvpe pass TLSSHIM_EXEC_TEST=env-ok); then wait, send
 * "line2 from the parent\n", read its echo, close.
 * Spawn modes: the dup2 file action is added BEFORE connect() upgrades the
 * socket (spawn-late: onto 1; spawn-self: onto itself, which clears
 * close-on-exec); posix_spawnp must refuse at spawn time.
 *
 * Prints: echo1=LINE, child=exitN|ERRNO-NAME, echo2=LINE (and the child's
 * own "args:" line on stdout). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int sock;

static void exchange(const char *tag)
{
	char line[128], buf[256];
	size_t got = 0;
	ssize_t n;

	snprintf(line, sizeof line, "%s from the parent\n", tag);
	if (write(sock, line, strlen(line)) != (ssize_t)strlen(line)) {
		printf("echo%c=%s\n", tag[4], strerror(errno));
		return;
	}
	while (got < sizeof buf - 1 && (got == 0 || buf[got - 1] != '\n')) {
		n = read(sock, buf + got, sizeof buf - 1 - got);
		if (n <= 0) {
			printf("echo%c=%s\n", tag[4], n < 0 ? strerror(errno) : "EOF");
			return;
		}
		got += (size_t)n;
	}
	buf[got - 1] = '\0';
	printf("echo%c=%s\n", tag[4], buf);
	fflush(stdout);
}

static const char *err_name(int err)
{
	return err == EBADF ? "EBADF" : strerror(err);
}

int main(int argc, char **argv)
{
	struct addrinfo hints, *ai;
	char script[256], fdname[16];
	char *env[] = { "TLSSHIM_EXEC_TEST=env-ok", "PATH=/usr/bin:/bin", NULL };
	const char *mode;
	int status, err, shfd = -1;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr, "usage: exec_client HOST PORT MODE\n");
		return 2;
	}
	mode = argv[3];
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
		fprintf(stderr, "cannot resolve %s\n", argv[1]);
		return 2;
	}
	sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		perror("socket");
		return 2;
	}

	if (!strncmp(mode, "spawn-", 6)) {
		posix_spawn_file_actions_t fa;
		char *sargv[] = { "sh", "-c", script, NULL };

		snprintf(script, sizeof script, "printf PLAINTEXT-LEAK; printf PLAINTEXT-LEAK >&%d", sock);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, sock, strcmp(mode, "spawn-self") ? 1 : sock);
		if (connect(sock, ai->ai_addr, ai->ai_addrlen) != 0) {
			perror("connect");
			return 2;
		}
		exchange("line1");
		err = posix_spawnp(&pid, "sh", &fa, NULL, sargv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (err)
			printf("child=%s\n", err_name(err));
		else if (waitpid(pid, &status, 0) == pid)
			printf("child=exit%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
		fflush(stdout);
		exchange("line2");
		close(sock);
		return 0;
	}

	if (connect(sock, ai->ai_addr, ai->ai_addrlen) != 0) {
		perror("connect");
		return 2;
	}
	exchange("line1");
	fcntl(sock, F_SETFD, 0);
	snprintf(script, sizeof script,
		 "printf PLAINTEXT-LEAK >&%d; echo \"args:$0:$1:${TLSSHIM_EXEC_TEST-unset}\"", sock);
	snprintf(fdname, sizeof fdname, "%d", sock);
	if (!strcmp(mode, "fexecve") || !strcmp(mode, "execveat"))
		shfd = open("/bin/sh", O_RDONLY); /* not O_CLOEXEC: the kernel reads it at exec */
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		char *vargv[] = { "sh-name", "-c", script, "sh-name", "arg1", NULL };

		/* argv[0] for sh -c is the word after the script. */
		if (!strcmp(mode, "execl"))
			execl("/bin/sh", "sh-name", "-c", script, "sh-name", "arg1", (char *)NULL);
		else if (!strcmp(mode, "execlp"))
			execlp("sh", "sh-name", "-c", script, "sh-name", "arg1", (char *)NULL);
		else if (!strcmp(mode, "execle"))
			execle("/bin/sh", "sh-name", "-c", script, "sh-name", "arg1", (char *)NULL, env);
		else if (!strcmp(mode, "execv"))
			execv("/bin/sh", vargv);
		else if (!strcmp(mode, "execvp"))
			execvp("sh", vargv);
		else if (!strcmp(mode, "execvpe"))
			execvpe("sh", vargv, env);
		else if (!strcmp(mode, "fexecve"))
			fexecve(shfd, vargv, environ);
		else if (!strcmp(mode, "execveat"))
			execveat(shfd, "", vargv, environ, AT_EMPTY_PATH);
		_exit(127);
	}
	if (pid < 0) {
		perror("vfork");
		return 2;
	}
	if (waitpid(pid, &status, 0) == pid)
		printf("child=exit%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
	fflush(stdout);
	exchange("line2");
	close(sock);
	freeaddrinfo(ai);
	return 0;
}
