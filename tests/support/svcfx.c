#include "svcfx.h"

#include "testenv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int svcfx_port(int offset)
{
	const char *b = getenv("FM_PORT_BASE");

	return (b ? atoi(b) : 25380) + 10 + offset;
}

/* 1 when GET /healthz answers 200. */
static int healthy(int port)
{
	struct sockaddr_in a = { 0 };
	char buf[64];
	const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;

	if (fd < 0)
		return 0;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			ok = strstr(buf, " 200 ") != NULL;
		}
	}
	close(fd);
	return ok;
}

int svcfx_start(struct svcproc *p, const char *name, int port,
		const char *const *env)
{
	char bin[1024], listen[64], key[64];
	const char *bindir = tenv_require("FM_BIN");
	const char *logdir = getenv("FM_BUILD");

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->port = port;
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", port);
	snprintf(p->log, sizeof(p->log), "%s/test-logs/%s-%d.log",
		 logdir ? logdir : "/tmp", name, port);
	snprintf(bin, sizeof(bin), "%s/fedmarket-%s", bindir, name);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		snprintf(key, sizeof(key), "FEDMARKET_%s_LISTEN", name);
		for (char *k = key; *k; k++)
			if (*k >= 'a' && *k <= 'z')
				*k = (char)(*k - 'a' + 'A');
		setenv(key, listen, 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		int st;

		if (healthy(port))
			return 0;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			fprintf(stderr, "%s exited at start; see %s\n", name,
				p->log);
			p->pid = 0;
			return -1;
		}
		usleep(50000);
	}
	fprintf(stderr, "%s did not become healthy; see %s\n", name, p->log);
	svcfx_kill(p);
	return -1;
}

int svcfx_stop(struct svcproc *p)
{
	int st = 0;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		usleep(50000);
	}
	svcfx_kill(p);
	return -1;
}

void svcfx_kill(struct svcproc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}
