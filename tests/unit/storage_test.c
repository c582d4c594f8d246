/* Unit tests of common/storage: references, keys, bundle paths, manifest
 * checks, and the embedded file:// backend with blobs and bundles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/fjson.h"
#include "storage/blob.h"
#include "storage/bundle.h"
#include "storage/store.h"
#include "dirfx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char hello_sha[] =
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

struct fx {
	char dir[64];
	char url[96];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-storage-unit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "file://%s/store", f->dir);
	if (store_open(&f->s, f->url, NULL))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static char *read_text(const char *path)
{
	struct buf b = BUF_INIT(1 << 20);

	assert_int_equal(buf_read_file(&b, path), FM_OK);
	return buf_detach(&b, NULL);
}

/* ---- references, keys, paths ---- */

static void test_storage__ref_parse_accepts_hex_prefix_and_upper(void **state)
{
	struct store_ref r;
	char text[80];

	(void)state;
	assert_int_equal(store_ref_parse(&r, hello_sha), FM_OK);
	assert_string_equal(r.hex, hello_sha);
	snprintf(text, sizeof(text), "sha256:%s", hello_sha);
	for (char *p = text + 7; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	assert_int_equal(store_ref_parse(&r, text), FM_OK);
	assert_string_equal(r.hex, hello_sha);
}

static void test_storage__ref_parse_names_what_is_wrong(void **state)
{
	struct store_ref r;
	char text[80];

	(void)state;
	assert_int_equal(store_ref_parse(&r, ""), FM_EINVAL);
	assert_int_equal(store_ref_parse(&r, "abc"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "got 3"));
	snprintf(text, sizeof(text), "%s", hello_sha);
	text[10] = 'g';
	assert_int_equal(store_ref_parse(&r, text), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "'g' at position 10"));
	snprintf(text, sizeof(text), "%s0", hello_sha);
	assert_int_equal(store_ref_parse(&r, text), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "got 65"));
}

static void test_storage__key_check_refuses_escapes(void **state)
{
	static const char *const bad[] = { "", "/abs", "a//b", "a/", "../x",
					   "a/../b", ".hidden", "a/.tmp",
					   "sp ace", "back\\slash", "q?x",
					   NULL };

	(void)state;
	assert_int_equal(store_key_check("sha256/ab-c_d.e~f"), FM_OK);
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(store_key_check(bad[i]), FM_EINVAL);
		assert_true(strlen(fm_error_msg()) > 0);
	}
}

static void test_storage__path_check_confines_paths(void **state)
{
	static const char *const bad[] = { "", "/etc/passwd", "../x",
					   "a/../../x", "a/./b", "a//b", "a/",
					   ".", "..", "a\\b", "a\nb", NULL };

	(void)state;
	assert_int_equal(store_path_check("model.json"), FM_OK);
	assert_int_equal(store_path_check("weights/group 1.bin"), FM_OK);
	assert_int_equal(store_path_check(".config/x"), FM_OK);
	for (int i = 0; bad[i]; i++)
		assert_int_equal(store_path_check(bad[i]), FM_EINVAL);
	assert_int_equal(store_path_check("../x"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "\"..\""));
}

static void test_storage__kind_names_round_trip(void **state)
{
	enum store_kind k;

	(void)state;
	for (int i = STORE_KIND_MODEL; i <= STORE_KIND_DATASET; i++) {
		assert_int_equal(store_kind_parse(&k, store_kind_name(i)),
				 FM_OK);
		assert_int_equal(k, i);
	}
	assert_int_equal(store_kind_parse(&k, "weights"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "task-assets"));
}

/* ---- manifests ---- */

static const char good_manifest[] =
	"{\"manifest\":1,\"kind\":\"model\",\"name\":\"mnist-mlp\","
	"\"version\":\"3\",\"created\":\"2024-02-29T23:59:59Z\","
	"\"files\":[{\"path\":\"model.json\",\"sha256\":"
	"\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
	"\"size\":5},{\"path\":\"w/group1.bin\",\"sha256\":"
	"\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
	"\"size\":5}],"
	"\"model\":{\"format\":\"tfjs-layers\",\"inputs\":[{\"name\":\"x\","
	"\"shape\":[null,784],\"dtype\":\"float32\"}],\"outputs\":[{\"name\":"
	"\"y\",\"shape\":[null,10],\"dtype\":\"float32\"}],\"parameters\":"
	"101770,\"engine_version\":\"0.1.0\"},\"meta\":{\"task\":7}}";

static json_t *manifest(void)
{
	json_t *m = NULL;

	assert_int_equal(fj_parse(&m, good_manifest, strlen(good_manifest),
				  "test"), FM_OK);
	return m;
}

static void check_refused(json_t *m, const char *needle)
{
	assert_int_equal(store_manifest_check(m), FM_EINVAL);
	if (!strstr(fm_error_msg(), needle))
		fail_msg("error \"%s\" does not name \"%s\"", fm_error_msg(),
			 needle);
	json_decref(m);
}

static json_t *file_entry(json_t *m, size_t i)
{
	return json_array_get(json_object_get(m, "files"), i);
}

static void test_storage__manifest_check_accepts_a_model(void **state)
{
	json_t *m = manifest();

	(void)state;
	assert_int_equal(store_manifest_check(m), FM_OK);
	/* the model is optional for other kinds */
	json_object_set_new(m, "kind", json_string("result"));
	json_object_del(m, "model");
	assert_int_equal(store_manifest_check(m), FM_OK);
	json_decref(m);
}

static void test_storage__manifest_check_refuses_traversal(void **state)
{
	json_t *m = manifest();

	(void)state;
	json_object_set_new(file_entry(m, 1), "path",
			    json_string("../../etc/cron.d/x"));
	check_refused(m, "files[1].path");
	m = manifest();
	json_object_set_new(file_entry(m, 0), "path", json_string("/etc/x"));
	check_refused(m, "absolute");
}

static void test_storage__manifest_check_names_bad_fields(void **state)
{
	json_t *m;

	(void)state;
	m = manifest();
	json_object_set_new(m, "kind", json_string("weights"));
	check_refused(m, "kind");
	m = manifest();
	json_object_del(m, "model");
	check_refused(m, "model: required");
	m = manifest();
	json_object_set_new(m, "extra", json_true());
	check_refused(m, "extra");
	m = manifest();
	json_object_set_new(m, "created", json_string("2024-02-30T00:00:00Z"));
	check_refused(m, "created");
	m = manifest();
	json_object_set_new(m, "manifest", json_integer(2));
	check_refused(m, "manifest");
	m = manifest();
	json_object_set_new(file_entry(m, 0), "sha256", json_string("ABC"));
	check_refused(m, "files[0].sha256");
	m = manifest();
	json_object_set_new(file_entry(m, 0), "size", json_integer(-1));
	check_refused(m, "files[0].size");
	m = manifest();
	json_object_set_new(file_entry(m, 1), "path", json_string("model.json"));
	check_refused(m, "listed twice");
	m = manifest();
	json_object_set_new(file_entry(m, 0), "path", json_string("w"));
	check_refused(m, "both a file and a directory");
	m = manifest();
	json_array_clear(json_object_get(m, "files"));
	check_refused(m, "at least one file");
	m = manifest();
	json_object_set_new(json_object_get(m, "model"), "format",
			    json_string("onnx"));
	check_refused(m, "model.format");
	m = manifest();
	json_array_set_new(json_object_get(json_array_get(json_object_get(
		json_object_get(m, "model"), "inputs"), 0), "shape"), 1,
			   json_integer(0));
	check_refused(m, "model.inputs[0].shape[1]");
	m = manifest();
	json_object_set_new(m, "name", json_string(""));
	check_refused(m, "name");
	m = manifest();
	json_object_set_new(m, "meta", json_string("x"));
	check_refused(m, "meta");
}

/* ---- file:// backend ---- */

static void test_storage__open_refuses_bad_urls(void **state)
{
	struct store *s = NULL;

	(void)state;
	assert_int_equal(store_open(&s, "ftp://x/y", NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "ftp://x/y"));
	assert_int_equal(store_open(&s, "file://", NULL), FM_EINVAL);
	assert_int_equal(store_open(&s, "s3://A_b", NULL), FM_EINVAL);
	assert_int_equal(store_open(&s, "http://h/p?q=1", NULL), FM_EINVAL);
	assert_int_equal(store_open(&s, "", NULL), FM_EINVAL);
	assert_null(s);
}

static void test_storage__http_url_hides_password(void **state)
{
	struct store *s = NULL;

	(void)state;
	assert_int_equal(store_open(&s, "http://bob:hunter2@127.0.0.1:9/x",
				    NULL), FM_OK);
	assert_null(strstr(store_url(s), "hunter2"));
	assert_null(strstr(store_url(s), "bob"));
	assert_string_equal(store_url(s), "http://127.0.0.1:9/x/");
	store_free(s);
}

static void test_storage__file_round_trip(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1024);
	char src[128], dst[128];
	uint64_t size = 0;

	assert_int_equal(store_put_mem(f->s, "a/b/c.txt", "hello", 5, NULL),
			 FM_OK);
	assert_int_equal(store_head(f->s, "a/b/c.txt", &size), FM_OK);
	assert_int_equal(size, 5);
	assert_int_equal(store_get_mem(f->s, "a/b/c.txt", &b, NULL), FM_OK);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);

	snprintf(src, sizeof(src), "%s/src.txt", f->dir);
	snprintf(dst, sizeof(dst), "%s/dst.txt", f->dir);
	write_file(src, "second object");
	assert_int_equal(store_put_file(f->s, "x", src, NULL), FM_OK);
	assert_int_equal(store_get_file(f->s, "x", dst, NULL), FM_OK);
	{
		char *t = read_text(dst);

		assert_string_equal(t, "second object");
		free(t);
	}
	assert_int_equal(store_delete(f->s, "x"), FM_OK);
	assert_int_equal(store_head(f->s, "x", NULL), FM_ENOTFOUND);
	assert_int_equal(store_delete(f->s, "x"), FM_OK);
	assert_int_equal(store_get_mem(f->s, "x", &b, NULL), FM_ENOTFOUND);

	/* an object over the caller's limit is refused, not truncated */
	b.max = 3;
	assert_int_equal(store_get_mem(f->s, "a/b/c.txt", &b, NULL),
			 FM_ETOOLARGE);
	assert_int_equal(store_put_mem(f->s, "../escape", "x", 1, NULL),
			 FM_EINVAL);
	buf_cleanup(&b);
}

static int count_key(void *ud, const char *key, uint64_t size)
{
	int *n = ud;

	(void)size;
	if (strncmp(key, "p/", 2) == 0)
		(*n)++;
	return 0;
}

static int count_all(void *ud, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(int *)ud;
	return 0;
}

static void test_storage__file_list_sees_keys_not_temps(void **state)
{
	struct fx *f = *state;
	char tmp[160];
	int n = 0;

	assert_int_equal(store_put_mem(f->s, "p/1", "a", 1, NULL), FM_OK);
	assert_int_equal(store_put_mem(f->s, "p/q/2", "b", 1, NULL), FM_OK);
	assert_int_equal(store_put_mem(f->s, "r", "c", 1, NULL), FM_OK);
	snprintf(tmp, sizeof(tmp), "%s/store/p/.1.fm-XXXXXX", f->dir);
	write_file(tmp, "half");
	assert_int_equal(store_list(f->s, "p/", count_key, &n), FM_OK);
	assert_int_equal(n, 2);
}

static void test_storage__failed_get_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct store_xfer x = { .max_bytes = 4 };
	char out[128], dir[128];

	snprintf(dir, sizeof(dir), "%s/dl", f->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(out, sizeof(out), "%s/file", dir);
	assert_int_equal(store_get_file(f->s, "missing", out, NULL),
			 FM_ENOTFOUND);
	assert_int_equal(store_put_mem(f->s, "big", "0123456789", 10, NULL),
			 FM_OK);
	assert_int_equal(store_get_file(f->s, "big", out, &x), FM_ETOOLARGE);
	assert_int_equal(dirfx_count(dir), 0);
}

/* ---- blobs ---- */

static void test_storage__blob_round_trip_and_dedup(void **state)
{
	struct fx *f = *state;
	struct store_ref r, r2;
	struct buf b = BUF_INIT(64);
	char src[128], dst[128];
	uint64_t size = 0;

	assert_int_equal(store_blob_put_mem(f->s, &r, "hello", 5), FM_OK);
	assert_string_equal(r.hex, hello_sha);
	assert_int_equal(store_head(f->s, "sha256/2cf24dba5fb0a30e26e83b2ac5b9"
				    "e29e1b161e5c1fa7425e73043362938b9824",
				    &size), FM_OK);
	assert_int_equal(size, 5);
	snprintf(src, sizeof(src), "%s/h.txt", f->dir);
	write_file(src, "hello");
	assert_int_equal(store_blob_put_file(f->s, &r2, &size, src, NULL),
			 FM_OK);
	assert_string_equal(r2.hex, hello_sha);
	assert_int_equal(size, 5);
	assert_int_equal(store_blob_get_mem(f->s, &r, &b), FM_OK);
	assert_memory_equal(b.data, "hello", 5);
	snprintf(dst, sizeof(dst), "%s/out.txt", f->dir);
	assert_int_equal(store_blob_get_file(f->s, &r, 5, dst, NULL), FM_OK);
	/* a size that disagrees with the manifest is refused */
	unlink(dst);
	assert_int_equal(store_blob_get_file(f->s, &r, 6, dst, NULL),
			 FM_EUNPROCESSABLE);
	assert_int_equal(access(dst, F_OK), -1);
	buf_cleanup(&b);
}

static void test_storage__blob_tampering_is_detected(void **state)
{
	struct fx *f = *state;
	struct store_ref r;
	struct buf b = BUF_INIT(64);
	char blob[256], dir[128], dst[160];

	assert_int_equal(store_blob_put_mem(f->s, &r, "hello", 5), FM_OK);
	snprintf(blob, sizeof(blob), "%s/store/sha256/%s", f->dir, r.hex);
	write_file(blob, "jello"); /* same size, other bytes */
	assert_int_equal(store_blob_get_mem(f->s, &r, &b), FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "does not match"));
	assert_int_equal(b.len, 0);
	snprintf(dir, sizeof(dir), "%s/dl", f->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(dst, sizeof(dst), "%s/hello.txt", dir);
	assert_int_equal(store_blob_get_file(f->s, &r, UINT64_MAX, dst, NULL),
			 FM_EUNPROCESSABLE);
	assert_int_equal(dirfx_count(dir), 0);
	buf_cleanup(&b);
}

/* ---- bundles ---- */

static void make_tree(const char *root)
{
	char p[256];

	assert_int_equal(mkdir(root, 0755), 0);
	snprintf(p, sizeof(p), "%s/w", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/model.json", root);
	write_file(p, "{\"modelTopology\":{}}");
	snprintf(p, sizeof(p), "%s/w/group1.bin", root);
	write_file(p, "\x01\x02\x03\x04");
}

static json_t *model_meta(void)
{
	json_t *m = manifest();
	json_t *model = json_incref(json_object_get(m, "model"));

	json_decref(m);
	return model;
}

static void test_storage__bundle_push_pull_round_trip(void **state)
{
	struct fx *f = *state;
	json_t *model = model_meta(), *m = NULL, *m2 = NULL;
	struct store_bundle_info info = {
		.kind = STORE_KIND_MODEL, .name = "mlp", .version = "0",
		.created = "2024-01-01T00:00:00Z", .model = model,
	};
	struct store_ref ref, ref2;
	char src[128], dst[128], cmd[300];

	snprintf(src, sizeof(src), "%s/src", f->dir);
	snprintf(dst, sizeof(dst), "%s/dst", f->dir);
	make_tree(src);
	assert_int_equal(store_bundle_push(f->s, &ref, &m, src, &info, NULL),
			 FM_OK);
	assert_int_equal(json_array_size(json_object_get(m, "files")), 2);
	assert_string_equal(json_string_value(json_object_get(
		file_entry(m, 1), "path")), "w/group1.bin");
	/* the same content and metadata give the same reference */
	assert_int_equal(store_bundle_push(f->s, &ref2, NULL, src, &info,
					   NULL), FM_OK);
	assert_string_equal(ref.hex, ref2.hex);
	assert_int_equal(store_bundle_pull(f->s, &ref, dst, &m2, NULL), FM_OK);
	assert_true(json_equal(m, m2));
	snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' >/dev/null", src, dst);
	assert_int_equal(system(cmd), 0);
	/* the folder must have somewhere to go */
	snprintf(cmd, sizeof(cmd), "%s/no/such/dst", f->dir);
	assert_int_equal(store_bundle_pull(f->s, &ref, cmd, NULL, NULL),
			 FM_ENOTFOUND);
	assert_non_null(strstr(fm_error_msg(), "does not exist"));
	/* a second pull into the now full directory is refused */
	assert_int_equal(store_bundle_pull(f->s, &ref, dst, NULL, NULL),
			 FM_ECONFLICT);
	json_decref(m);
	json_decref(m2);
	json_decref(model);
}

static void test_storage__bundle_push_refuses_links_and_bad_info(void **state)
{
	struct fx *f = *state;
	struct store_bundle_info info = {
		.kind = STORE_KIND_DATASET, .name = "d", .version = "1",
	};
	struct store_ref ref;
	char src[128], link[160];
	int n = 0;

	snprintf(src, sizeof(src), "%s/src", f->dir);
	make_tree(src);
	/* a model bundle without model metadata moves no bytes */
	info.kind = STORE_KIND_MODEL;
	assert_int_equal(store_bundle_push(f->s, &ref, NULL, src, &info, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "model"));
	assert_int_equal(store_list(f->s, "", count_all, &n), FM_OK);
	assert_int_equal(n, 0);
	info.kind = STORE_KIND_DATASET;
	snprintf(link, sizeof(link), "%s/w/passwd", src);
	assert_int_equal(symlink("/etc/passwd", link), 0);
	assert_int_equal(store_bundle_push(f->s, &ref, NULL, src, &info, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "symbolic link"));
	assert_non_null(strstr(fm_error_msg(), "w/passwd"));
}

/* Stores a manifest that skips the checks, as an attacker would. */
static void put_raw_manifest(struct store *s, struct store_ref *ref,
			     const char *path)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"manifest\":1,\"kind\":\"result\",\"name\":\"r\","
		 "\"version\":\"1\",\"created\":\"2024-01-01T00:00:00Z\","
		 "\"files\":[{\"path\":\"%s\",\"sha256\":\"%s\",\"size\":5}]}",
		 path, hello_sha);
	assert_int_equal(store_blob_put_mem(s, NULL, "hello", 5), FM_OK);
	assert_int_equal(store_blob_put_mem(s, ref, text, strlen(text)),
			 FM_OK);
}

static void test_storage__bundle_pull_refuses_traversal(void **state)
{
	struct fx *f = *state;
	struct store_ref ref;
	char dst[128], evil[128];

	snprintf(dst, sizeof(dst), "%s/out", f->dir);
	assert_int_equal(mkdir(dst, 0755), 0);
	snprintf(evil, sizeof(evil), "%s/out/evil", f->dir);
	assert_int_equal(mkdir(evil, 0755), 0);
	snprintf(dst, sizeof(dst), "%s/out/dst", f->dir);
	put_raw_manifest(f->s, &ref, "../evil/x");
	assert_int_equal(store_bundle_pull(f->s, &ref, dst, NULL, NULL),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "files[0].path"));
	assert_int_equal(access(dst, F_OK), -1);
	assert_int_equal(dirfx_count(evil), 0);
	put_raw_manifest(f->s, &ref, "/tmp/x");
	assert_int_equal(store_bundle_pull(f->s, &ref, dst, NULL, NULL),
			 FM_EINVAL);
	assert_int_equal(access(dst, F_OK), -1);
}

static void test_storage__bundle_failed_pull_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct store_bundle_info info = {
		.kind = STORE_KIND_DATASET, .name = "d", .version = "1",
	};
	struct store_ref ref, blob;
	char src[128], out[128], dst[160], p[160];

	snprintf(src, sizeof(src), "%s/src", f->dir);
	snprintf(out, sizeof(out), "%s/out", f->dir);
	snprintf(dst, sizeof(dst), "%s/dst", out);
	make_tree(src);
	assert_int_equal(mkdir(out, 0755), 0);
	assert_int_equal(store_bundle_push(f->s, &ref, NULL, src, &info, NULL),
			 FM_OK);
	/* the second file's blob goes missing: the first must not stay */
	snprintf(p, sizeof(p), "%s/w/group1.bin", src);
	assert_int_equal(store_hash_file(&blob, NULL, p), FM_OK);
	snprintf(p, sizeof(p), "sha256/%s", blob.hex);
	assert_int_equal(store_delete(f->s, p), FM_OK);
	assert_int_equal(store_bundle_pull(f->s, &ref, dst, NULL, NULL),
			 FM_ENOTFOUND);
	assert_non_null(strstr(fm_error_msg(), "w/group1.bin"));
	assert_int_equal(dirfx_count(out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage__ref_parse_accepts_hex_prefix_and_upper),
		cmocka_unit_test(test_storage__ref_parse_names_what_is_wrong),
		cmocka_unit_test(test_storage__key_check_refuses_escapes),
		cmocka_unit_test(test_storage__path_check_confines_paths),
		cmocka_unit_test(test_storage__kind_names_round_trip),
		cmocka_unit_test(test_storage__manifest_check_accepts_a_model),
		cmocka_unit_test(test_storage__manifest_check_refuses_traversal),
		cmocka_unit_test(test_storage__manifest_check_names_bad_fields),
		cmocka_unit_test(test_storage__open_refuses_bad_urls),
		cmocka_unit_test(test_storage__http_url_hides_password),
		cmocka_unit_test_setup_teardown(test_storage__file_round_trip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__file_list_sees_keys_not_temps, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__failed_get_leaves_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__blob_round_trip_and_dedup, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__blob_tampering_is_detected, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__bundle_push_pull_round_trip, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__bundle_push_refuses_links_and_bad_info,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__bundle_pull_refuses_traversal, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storage__bundle_failed_pull_leaves_nothing, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
