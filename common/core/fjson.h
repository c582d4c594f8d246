/* JSON helpers over jansson. Typed getters check type and range and, on
 * failure, set an error naming the full path of the field, e.g.
 * "task.training.batch_size: expected integer >= 1". Returned strings and
 * objects are borrowed from the parent. */
#ifndef FM_CORE_FJSON_H
#define FM_CORE_FJSON_H

#include <jansson.h>
#include <stddef.h>

/* Parses text (len bytes, need not be NUL-terminated) into a new reference.
 * what names the input in errors ("request body", a file name). */
int fj_parse(json_t **out, const char *text, size_t len, const char *what);
int fj_load_file(json_t **out, const char *path, size_t max_bytes);

/* Required fields. path is the object's own path ("" for the root). */
int fj_int(const json_t *obj, const char *path, const char *key,
	   long long min, long long max, long long *out);
int fj_num(const json_t *obj, const char *path, const char *key, double min,
	   double max, double *out);
int fj_str(const json_t *obj, const char *path, const char *key,
	   size_t max_len, const char **out);
int fj_bool(const json_t *obj, const char *path, const char *key, int *out);
int fj_obj(const json_t *obj, const char *path, const char *key,
	   json_t **out);
int fj_arr(const json_t *obj, const char *path, const char *key,
	   size_t max_items, json_t **out);
/* String member that must be one of choices (NULL-terminated); *out is its
 * index. */
int fj_enum(const json_t *obj, const char *path, const char *key,
	    const char *const *choices, int *out);

/* Optional fields: absent or null leaves *out = def. */
int fj_int_opt(const json_t *obj, const char *path, const char *key,
	       long long min, long long max, long long def, long long *out);
int fj_num_opt(const json_t *obj, const char *path, const char *key,
	       double min, double max, double def, double *out);
int fj_str_opt(const json_t *obj, const char *path, const char *key,
	       size_t max_len, const char *def, const char **out);
int fj_bool_opt(const json_t *obj, const char *path, const char *key,
		int def, int *out);
/* An object member, or *out = NULL when absent or null. */
int fj_obj_opt(const json_t *obj, const char *path, const char *key,
	       json_t **out);
int fj_enum_opt(const json_t *obj, const char *path, const char *key,
		const char *const *choices, int def, int *out);

/* Refuses members not in allowed (NULL-terminated), naming the first. */
int fj_no_unknown(const json_t *obj, const char *path,
		  const char *const *allowed);

/* Writes "path.key" (or "key" when path is empty) into out. */
void fj_path(char *out, size_t n, const char *path, const char *key);
/* Same for an array element: "path[i]". */
void fj_path_index(char *out, size_t n, const char *path, size_t i);

#endif
