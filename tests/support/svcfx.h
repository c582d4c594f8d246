/* Starts fedmarket services as real processes for tests, and stops them
 * by pid. */
#ifndef FM_TESTS_SVCFX_H
#define FM_TESTS_SVCFX_H

#include <sys/types.h>

struct svcproc {
	pid_t pid;
	char name[32];
	int port;
	char url[64];
	char log[256];
};

/* Starts bin/fedmarket-<name> listening on 127.0.0.1:port with the
 * current environment plus env ("KEY=VALUE" strings, NULL-terminated, may
 * be NULL), and waits until /healthz answers. Output goes to a log file
 * under FM_BUILD/test-logs. */
int svcfx_start(struct svcproc *p, const char *name, int port,
		const char *const *env);
/* SIGTERM, then SIGKILL after 10 s; returns the exit status or -1. */
int svcfx_stop(struct svcproc *p);
/* SIGKILL at once (crash tests). */
void svcfx_kill(struct svcproc *p);

/* A port for a test's own servers: FM_PORT_BASE + 10 + offset. */
int svcfx_port(int offset);

#endif
