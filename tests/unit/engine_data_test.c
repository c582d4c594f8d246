/* Data sets: IDX (plain, gzip, float), CSV (quotes, CRLF, blank lines),
 * subsets, seeded splits, scaling, standardization, bilinear resize,
 * label checks, and the random generator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/ml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static char tmp_root[] = "/tmp/engine_data_test.XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp_root, name);
}

static void write_bytes(const char *name, const void *p, size_t n, int gz)
{
	char path[512];

	path_of(path, sizeof(path), name);
	if (gz) {
		gzFile f = gzopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(gzwrite(f, p, (unsigned)n), (int)n);
		gzclose(f);
	} else {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(fwrite(p, 1, n, f), n);
		fclose(f);
	}
}

static void write_text(const char *name, const char *text)
{
	write_bytes(name, text, strlen(text), 0);
}

/* images [3, 2, 2] ubyte = 0..11, labels [3] = 2, 0, 1 */
static void write_idx(int gz)
{
	unsigned char img[16 + 12], lab[8 + 3] = { 0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1 };
	unsigned char hdr[16] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2 };

	memcpy(img, hdr, 16);
	for (int i = 0; i < 12; i++)
		img[16 + i] = (unsigned char)i;
	write_bytes(gz ? "img.gz" : "img.idx", img, sizeof(img), gz);
	write_bytes(gz ? "lab.gz" : "lab.idx", lab, sizeof(lab), gz);
}

static void load(struct ml_dataset *d, const char *img, const char *lab)
{
	char a[512], b[512];

	path_of(a, sizeof(a), img);
	path_of(b, sizeof(b), lab);
	if (ml_dataset_load_idx(d, a, lab ? b : NULL) != FM_OK)
		fail_msg("%s", fm_error_msg());
}

static void test_engine__idx_plain_and_gzip(void **state)
{
	struct ml_dataset a, b;

	(void)state;
	write_idx(0);
	write_idx(1);
	load(&a, "img.idx", "lab.idx");
	load(&b, "img.gz", "lab.gz");
	assert_int_equal(a.n, 3);
	assert_int_equal(a.x_size, 4);
	assert_int_equal(a.x_shape.rank, 2);
	assert_int_equal(a.x_shape.dim[0], 2);
	assert_int_equal(a.y_size, 1);
	assert_true(a.x[5] == 5.0f && a.x[11] == 11.0f);
	assert_true(a.y[0] == 2.0f && a.y[1] == 0.0f && a.y[2] == 1.0f);
	assert_memory_equal(a.x, b.x, 12 * sizeof(float));
	assert_memory_equal(a.y, b.y, 3 * sizeof(float));
	assert_int_equal(ml_dataset_check_labels(&a, 3), FM_OK);
	assert_int_equal(ml_dataset_check_labels(&a, 2), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "sample 1: label 2 is not"));
	ml_dataset_cleanup(&a);
	ml_dataset_cleanup(&b);
}

static void test_engine__idx_float_and_matrix_labels(void **state)
{
	/* images [2, 3] big-endian float32, labels [2, 2] short */
	unsigned char img[12 + 24] = { 0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 3 };
	unsigned char lab[12 + 8] = { 0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 2,
				      0, 1, 0xff, 0xfe, 0, 3, 0, 4 };
	float vals[6] = { 1.5f, -2.25f, 0, 3e10f, 1e-3f, -7 };
	struct ml_dataset d;

	(void)state;
	for (int i = 0; i < 6; i++) {
		uint32_t u;

		memcpy(&u, &vals[i], 4);
		img[12 + 4 * i] = (unsigned char)(u >> 24);
		img[13 + 4 * i] = (unsigned char)(u >> 16);
		img[14 + 4 * i] = (unsigned char)(u >> 8);
		img[15 + 4 * i] = (unsigned char)u;
	}
	write_bytes("f.idx", img, sizeof(img), 0);
	write_bytes("s.idx", lab, sizeof(lab), 0);
	load(&d, "f.idx", "s.idx");
	assert_memory_equal(d.x, vals, sizeof(vals));
	assert_int_equal(d.y_size, 2);
	assert_true(d.y[0] == 1 && d.y[1] == -2 && d.y[2] == 3 && d.y[3] == 4);
	ml_dataset_cleanup(&d);
}

static void test_engine__idx_refuses_bad_files(void **state)
{
	unsigned char extra[16 + 13] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,
					 0, 0, 0, 2 };
	unsigned char nan[12 + 4] = { 0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1,
				      0x7f, 0xc0, 0, 0 };
	unsigned char huge[16 + 4] = { 0, 0, 8, 3, 0x10, 0, 0, 0, 0, 0, 0, 2,
				       0, 0, 0, 2, 1, 2, 3, 4 };
	struct ml_dataset d = { 0 };
	char a[512];

	(void)state;
	write_bytes("extra.idx", extra, sizeof(extra), 0);
	path_of(a, sizeof(a), "extra.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "data after the 3 items"));
	write_bytes("nan.idx", nan, sizeof(nan), 0);
	path_of(a, sizeof(a), "nan.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "nan.idx: sample 1: value 1 is "
			       "not finite"));
	path_of(a, sizeof(a), "missing.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_ENOTFOUND);
	assert_null(d.x);
	/* 2^28 items of 2x2 bytes claimed by 20 bytes: refused before 4 GiB
	 * are allocated, plain or gzip */
	write_bytes("huge.idx", huge, sizeof(huge), 0);
	write_bytes("huge.gz", huge, sizeof(huge), 1);
	path_of(a, sizeof(a), "huge.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "truncated: the header gives "
			       "268435456 items of 4 values"));
	path_of(a, sizeof(a), "huge.gz");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "truncated: the header gives"));
	assert_null(d.x);
}

/* Files in the wrong place say what they are and what was expected. */
static void test_engine__idx_names_what_was_given(void **state)
{
	unsigned char cube[16 + 12] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0,
					   3, 0, 0, 0, 4 };
	struct ml_dataset d = { 0 };
	char a[512], b[512];

	(void)state;
	write_idx(0);
	/* LABELS,IMAGES instead of IMAGES,LABELS */
	path_of(a, sizeof(a), "lab.idx");
	path_of(b, sizeof(b), "img.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, b), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "lab.idx: an IDX label file (1 "
			       "dimension) where images (2+ dimensions) were "
			       "expected: were IMAGES,LABELS given in the "
			       "other order?"));
	/* labels alone where images belong: no word of an order */
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "where images (2+ dimensions) "
			       "were expected"));
	assert_null(strstr(fm_error_msg(), "other order"));
	/* images where labels belong */
	write_bytes("cube.idx", cube, sizeof(cube), 0);
	path_of(b, sizeof(b), "cube.idx");
	path_of(a, sizeof(a), "img.idx");
	assert_int_equal(ml_dataset_load_idx(&d, a, b), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "cube.idx: an IDX file of 3 "
			       "dimensions (images?) where labels"));
	/* a folder, and a CSV file */
	assert_int_equal(ml_dataset_load_idx(&d, tmp_root, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), ": a folder where an IDX file "
			       "was expected"));
	write_text("t.csv", "a,b,label\n1,2,3\n");
	path_of(a, sizeof(a), "t.csv");
	assert_int_equal(ml_dataset_load_idx(&d, a, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "t.csv: not an IDX file"));
	assert_non_null(strstr(fm_error_msg(), "a CSV file?"));
	assert_null(d.x);
}

static void test_engine__csv_names_what_was_given(void **state)
{
	const char *in[] = { "a" }, *out[] = { "y" };
	struct ml_dataset d = { 0 };
	size_t line = 0;
	char p[512];

	(void)state;
	assert_int_equal(ml_dataset_load_csv(&d, tmp_root, in, 1, out, 1),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), ": a folder where a CSV file "
			       "was expected"));
	assert_null(strstr(fm_error_msg(), "read error"));
	write_idx(0);
	path_of(p, sizeof(p), "lab.idx");
	assert_int_equal(ml_dataset_load_csv(&d, p, in, 1, out, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "lab.idx:1: a NUL byte: a "
			       "binary file (IDX?) where CSV text was "
			       "expected"));
	assert_null(d.x);
	/* sample 2 (0-based) sits on line 6: after the header, blank lines
	 * hold no sample */
	write_text("lines.csv", "a,y\n1,0\n\n\"3\",1\r\n\n5,2\n");
	path_of(p, sizeof(p), "lines.csv");
	assert_int_equal(ml_dataset_csv_line(&line, p, 0), FM_OK);
	assert_int_equal(line, 2);
	assert_int_equal(ml_dataset_csv_line(&line, p, 1), FM_OK);
	assert_int_equal(line, 4);
	assert_int_equal(ml_dataset_csv_line(&line, p, 2), FM_OK);
	assert_int_equal(line, 6);
	assert_int_equal(ml_dataset_load_csv(&d, p, in, 1, out, 1), FM_OK);
	assert_int_equal(d.n, 3);
	ml_dataset_cleanup(&d);
	assert_int_equal(ml_dataset_csv_line(&line, p, 3), FM_ENOTFOUND);
}

static void test_engine__csv_quotes_crlf_blank(void **state)
{
	const char *in[] = { "x 1", "b" }, *out[] = { "y" };
	struct ml_dataset d;
	char p[512];

	(void)state;
	write_text("q.csv", "\"x 1\",\"a,\"\"b\",b,y\r\n"
			    "1.5,ignored,  2 ,1\r\n"
			    "\r\n"
			    "-3e2,\"z\",4,0\r\n");
	path_of(p, sizeof(p), "q.csv");
	if (ml_dataset_load_csv(&d, p, in, 2, out, 1) != FM_OK)
		fail_msg("%s", fm_error_msg());
	assert_int_equal(d.n, 2);
	assert_int_equal(d.x_size, 2);
	assert_true(d.x[0] == 1.5f && d.x[1] == 2.0f);
	assert_true(d.x[2] == -300.0f && d.x[3] == 4.0f);
	assert_true(d.y[0] == 1.0f && d.y[1] == 0.0f);
	ml_dataset_cleanup(&d);
}

static void test_engine__csv_refuses_bad_values(void **state)
{
	const char *in[] = { "a" }, *out[] = { "y" };
	struct ml_dataset d = { 0 };
	char p[512];

	(void)state;
	write_text("nan.csv", "a,y\n1,0\nnan,1\n");
	path_of(p, sizeof(p), "nan.csv");
	assert_int_equal(ml_dataset_load_csv(&d, p, in, 1, out, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "nan.csv:3: column 'a': 'nan' "
			       "is not a finite number"));
	write_text("empty.csv", "");
	path_of(p, sizeof(p), "empty.csv");
	assert_int_equal(ml_dataset_load_csv(&d, p, in, 1, out, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "empty file"));
	write_text("header.csv", "a,y\n");
	path_of(p, sizeof(p), "header.csv");
	assert_int_equal(ml_dataset_load_csv(&d, p, in, 1, out, 1), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "no data rows"));
	assert_null(d.x);
}

static void make_seq(struct ml_dataset *d, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->n = n;
	d->x_size = 2;
	d->y_size = 1;
	d->x_shape.rank = 1;
	d->x_shape.dim[0] = 2;
	d->x = malloc(2 * n * sizeof(float));
	d->y = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		d->x[2 * i] = (float)i;
		d->x[2 * i + 1] = (float)(10 * i);
		d->y[i] = (float)i;
	}
}

static void test_engine__split_and_subset(void **state)
{
	struct ml_dataset d, a, b, a2, b2, s;
	size_t idx[3] = { 4, 0, 4 };
	int seen[100] = { 0 };

	(void)state;
	make_seq(&d, 100);
	assert_int_equal(ml_dataset_split(&a, &b, &d, 0.2, 7), FM_OK);
	assert_int_equal(a.n, 80);
	assert_int_equal(b.n, 20);
	for (size_t i = 0; i < a.n; i++)
		seen[(int)a.y[i]]++;
	for (size_t i = 0; i < b.n; i++)
		seen[(int)b.y[i]]++;
	for (int i = 0; i < 100; i++)
		assert_int_equal(seen[i], 1);
	/* x rows travel with their labels */
	assert_true(b.x[2 * 3] == b.y[3] && b.x[2 * 3 + 1] == 10 * b.y[3]);
	assert_int_equal(ml_dataset_split(&a2, &b2, &d, 0.2, 7), FM_OK);
	assert_memory_equal(b.y, b2.y, 20 * sizeof(float));
	assert_int_equal(ml_dataset_subset(&s, &d, idx, 3), FM_OK);
	assert_true(s.y[0] == 4 && s.y[1] == 0 && s.y[2] == 4);
	idx[1] = 100;
	ml_dataset_cleanup(&s);
	assert_int_equal(ml_dataset_subset(&s, &d, idx, 3), FM_EINVAL);
	assert_int_equal(ml_dataset_split(&a2, &b2, &d, 1.5, 7), FM_EINVAL);
	ml_dataset_cleanup(&a);
	ml_dataset_cleanup(&b);
	ml_dataset_cleanup(&a2);
	ml_dataset_cleanup(&b2);
	ml_dataset_cleanup(&d);
}

static void test_engine__scale_and_standardize(void **state)
{
	struct ml_dataset d;
	float mean[2], std[2];

	(void)state;
	make_seq(&d, 5); /* x0 = 0..4, x1 = 0..40 */
	ml_dataset_stats(&d, mean, std);
	assert_float_equal(mean[0], 2.0, 1e-6);
	assert_float_equal(std[0], sqrt(2.0), 1e-6);
	assert_float_equal(mean[1], 20.0, 1e-5);
	ml_dataset_standardize(&d, mean, std);
	assert_float_equal(d.x[0], -2.0 / sqrt(2.0), 1e-6);
	assert_float_equal(d.x[9], 20.0 / (10 * sqrt(2.0)), 1e-5);
	ml_dataset_cleanup(&d);
	make_seq(&d, 2);
	ml_dataset_scale(&d, 255);
	assert_true(d.x[3] == 10.0f / 255.0f);
	ml_dataset_cleanup(&d);
}

static void test_engine__resize_bilinear(void **state)
{
	struct ml_dataset d = { 0 };
	float img[4] = { 0, 1, 2, 3 }; /* 2x2 */

	(void)state;
	d.n = 1;
	d.x_size = 4;
	d.x_shape.rank = 2;
	d.x_shape.dim[0] = d.x_shape.dim[1] = 2;
	d.x = malloc(sizeof(img));
	memcpy(d.x, img, sizeof(img));
	assert_int_equal(ml_dataset_resize(&d, 4, 4), FM_OK);
	assert_int_equal(d.x_size, 16);
	/* TF's resize_bilinear (no corner alignment): src = dst / 2 */
	const float want[16] = { 0, 0.5f, 1, 1, 1, 1.5f, 2, 2,
				 2, 2.5f, 3, 3, 2, 2.5f, 3, 3 };

	for (int i = 0; i < 16; i++)
		assert_float_equal(d.x[i], want[i], 1e-6);
	assert_int_equal(ml_dataset_resize(&d, 0, 4), FM_EINVAL);
	ml_dataset_cleanup(&d);
}

static void test_engine__rng_is_deterministic(void **state)
{
	struct ml_rng a, b;
	size_t idx[50];
	double sum = 0, sq = 0;

	(void)state;
	ml_rng_seed(&a, 42);
	ml_rng_seed(&b, 42);
	for (int i = 0; i < 100; i++)
		assert_true(ml_rng_u64(&a) == ml_rng_u64(&b));
	for (int i = 0; i < 20000; i++) {
		double x = ml_rng_normal(&a);

		sum += x;
		sq += x * x;
		assert_true(ml_rng_below(&b, 7) < 7);
	}
	assert_true(fabs(sum / 20000) < 0.05);
	assert_true(fabs(sq / 20000 - 1) < 0.05);
	for (size_t i = 0; i < 50; i++)
		idx[i] = i;
	ml_rng_shuffle(&a, idx, 50);
	int moved = 0, seen[50] = { 0 };

	for (size_t i = 0; i < 50; i++) {
		moved += idx[i] != i;
		seen[idx[i]]++;
	}
	assert_true(moved > 25);
	for (size_t i = 0; i < 50; i++)
		assert_int_equal(seen[i], 1);
}

/* Random CSV text and random IDX headers: loaded or refused with a
 * message, never a crash (ASan in `make check`). */
static void test_engine__random_files_never_crash(void **state)
{
	const char alphabet[] = "ab,,\"\"\r\n\n0123456789.-e \t";
	const char *in[] = { "a", "b" }, *out[] = { "y" };
	char text[300], p[512], q[512];
	unsigned char idx[40];
	struct ml_rng r;
	int refused = 0;

	(void)state;
	ml_rng_seed(&r, 99);
	path_of(p, sizeof(p), "rand.csv");
	path_of(q, sizeof(q), "rand.idx");
	for (int i = 0; i < 600; i++) {
		struct ml_dataset d = { 0 };
		size_t n = 8 + (size_t)ml_rng_below(&r, sizeof(text) - 9);

		memcpy(text, "a,b,y\n", 6);
		for (size_t k = 6; k < n; k++)
			text[k] = alphabet[ml_rng_below(&r, sizeof(alphabet) - 1)];
		write_bytes("rand.csv", text, n, 0);
		if (ml_dataset_load_csv(&d, p, in, 2, out, 1) == FM_OK) {
			assert_true(d.n > 0 && d.x && d.y);
			ml_dataset_cleanup(&d);
		} else {
			assert_null(d.x);
			refused++;
		}
		idx[0] = idx[1] = 0;
		idx[2] = (unsigned char)(0x08 + ml_rng_below(&r, 7));
		idx[3] = (unsigned char)ml_rng_below(&r, 6);
		for (size_t k = 4; k < sizeof(idx); k++)
			idx[k] = (unsigned char)(ml_rng_below(&r, 4) ?
						 ml_rng_below(&r, 4) :
						 ml_rng_below(&r, 256));
		write_bytes("rand.idx", idx, 4 + (size_t)ml_rng_below(&r, 36),
			    ml_rng_below(&r, 2));
		if (ml_dataset_load_idx(&d, q, NULL) == FM_OK)
			ml_dataset_cleanup(&d);
		else
			assert_true(fm_error_msg()[0] != '\0');
	}
	assert_true(refused > 30);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine__idx_plain_and_gzip),
		cmocka_unit_test(test_engine__idx_float_and_matrix_labels),
		cmocka_unit_test(test_engine__idx_refuses_bad_files),
		cmocka_unit_test(test_engine__idx_names_what_was_given),
		cmocka_unit_test(test_engine__csv_names_what_was_given),
		cmocka_unit_test(test_engine__csv_quotes_crlf_blank),
		cmocka_unit_test(test_engine__csv_refuses_bad_values),
		cmocka_unit_test(test_engine__split_and_subset),
		cmocka_unit_test(test_engine__scale_and_standardize),
		cmocka_unit_test(test_engine__resize_bilinear),
		cmocka_unit_test(test_engine__rng_is_deterministic),
		cmocka_unit_test(test_engine__random_files_never_crash),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
