/* Logging: one line per record (time, level, component, context, message),
 * or one JSON object per line. The level is checked before formatting. */
#ifndef FM_CORE_LOG_H
#define FM_CORE_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Not thread-safe: call once from main before threads start.
 * component is borrowed and must outlive logging. */
void log_init(const char *component, enum log_level level, int json);
void log_set_stream(FILE *f);
/* Parses "debug", "info", "warn", "error", "off"; -1 if unknown. */
int log_level_parse(const char *s);
enum log_level log_level_get(void);

/* Context shown on this thread's records (a request or task id);
 * copied. NULL clears it. */
void log_ctx_set(const char *ctx);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(level, ...) \
	do { \
		if ((level) >= log_level_get()) \
			log_write((level), __VA_ARGS__); \
	} while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
