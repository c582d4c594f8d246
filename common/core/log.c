#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "fedmarket";
static enum log_level log_min = LOG_INFO;
static int log_json;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char log_ctx[96];

static const char *const level_names[] = { "debug", "info", "warn", "error",
					   "off" };

void log_init(const char *component, enum log_level level, int json)
{
	if (component)
		log_component = component;
	log_min = level;
	log_json = json;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

int log_level_parse(const char *s)
{
	for (int i = LOG_DEBUG; i <= LOG_OFF; i++)
		if (s && strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

enum log_level log_level_get(void)
{
	return log_min;
}

void log_ctx_set(const char *ctx)
{
	if (!ctx) {
		log_ctx[0] = '\0';
		return;
	}
	snprintf(log_ctx, sizeof(log_ctx), "%s", ctx);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char msg[2048];
	char ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	FILE *out = log_stream ? log_stream : stderr;

	if (level < log_min || level >= LOG_OFF)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));

	pthread_mutex_lock(&log_lock);
	if (log_json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts,
				      "level", level_names[level], "component",
				      log_component, "pid", (int)getpid(),
				      "msg", msg);
		if (o && log_ctx[0])
			json_object_set_new(o, "ctx", json_string(log_ctx));
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			fprintf(out, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(out, "%s %-5s %s[%d]%s%s%s %s\n", ts,
			level_names[level], log_component, (int)getpid(),
			log_ctx[0] ? " [" : "", log_ctx, log_ctx[0] ? "]" : "",
			msg);
	}
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}
