/* clients/lib/cli/work.c: a task's data loaded by its spec, and the
 * messages a person gets for data that is not what the task reads: they
 * name the file, the sample or line to look at (counted from 1), and
 * what was expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/work.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/cli_data_test.XXXXXX";

static const char idx_spec[] =
	"{\"training\": {\"loss\": \"sparse_categorical_crossentropy\","
	" \"data\": {\"kind\": \"image\", \"format\": \"idx\","
	" \"shape\": [2, 2], \"num_classes\": 10}}}";

static const char csv_spec[] =
	"{\"training\": {\"loss\": \"sparse_categorical_crossentropy\","
	" \"data\": {\"kind\": \"tabular\", \"format\": \"csv\","
	" \"inputs\": [\"a\", \"b\"], \"label_column\": \"y\","
	" \"labels\": [\"no\", \"yes\", \"maybe\"]}}}";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", root, name);
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* dir/ holding images [12, 2, 2] and labels [12] = i % 10, except
 * sample 10 (index 9), labelled bad. */
static void write_idx_folder(const char *dir, unsigned char bad)
{
	unsigned char img[16 + 48] = { 0, 0, 8, 3, 0, 0, 0, 12, 0, 0, 0, 2,
				       0, 0, 0, 2 };
	unsigned char lab[8 + 12] = { 0, 0, 8, 1, 0, 0, 0, 12 };
	char path[512];

	for (int i = 0; i < 12; i++)
		lab[8 + i] = (unsigned char)(i % 10);
	lab[8 + 9] = bad;
	path_of(path, sizeof(path), dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/train-images.idx", dir);
	write_file(path, img, sizeof(img));
	snprintf(path, sizeof(path), "%s/train-labels.idx", dir);
	write_file(path, lab, sizeof(lab));
}

static int load(struct ml_dataset *d, const char *spec_text,
		const char *name)
{
	json_t *spec = json_loads(spec_text, 0, NULL);
	char path[1024];
	int err;

	assert_non_null(spec);
	if (strchr(name, ','))
		snprintf(path, sizeof(path), "%s/%.*s,%s/%s", root,
			 (int)(strchr(name, ',') - name), name, root,
			 strchr(name, ',') + 1);
	else
		path_of(path, sizeof(path), name);
	err = work_load_data(d, spec, path);
	json_decref(spec);
	return err;
}

static void test_data__idx_label_outside_the_classes(void **state)
{
	struct ml_dataset d = { 0 };

	(void)state;
	write_idx_folder("good", 9);
	assert_int_equal(load(&d, idx_spec, "good"), FM_OK);
	assert_int_equal(d.n, 12);
	ml_dataset_cleanup(&d);
	write_idx_folder("bad", 12);
	assert_int_equal(load(&d, idx_spec, "bad"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "bad/train-labels.idx: sample "
			       "10: label 12 is not a class of this task "
			       "(0..9)"));
	assert_null(d.x);
}

static void test_data__idx_pair_in_the_other_order(void **state)
{
	struct ml_dataset d = { 0 };

	(void)state;
	write_idx_folder("pair", 1);
	assert_int_equal(load(&d, idx_spec, "pair/train-labels.idx,"
					    "pair/train-images.idx"),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "train-labels.idx: an IDX "
			       "label file (1 dimension) where images (2+ "
			       "dimensions) were expected: were "
			       "IMAGES,LABELS given in the other order?"));
	assert_int_equal(load(&d, idx_spec, "pair/train-images.idx,"
					    "pair/train-labels.idx"),
			 FM_OK);
	ml_dataset_cleanup(&d);
}

static void test_data__wrong_kind_of_path(void **state)
{
	static const char text[] = "a,b,y\n1,2,0\n";
	struct ml_dataset d = { 0 };

	(void)state;
	/* an IDX folder for a CSV task: no "read error" */
	write_idx_folder("idxdata", 1);
	assert_int_equal(load(&d, csv_spec, "idxdata"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "idxdata: a folder where a CSV "
			       "file was expected (this task's data is "
			       "CSV)"));
	/* a CSV file for an IDX task */
	write_file("one.csv", text, strlen(text));
	assert_int_equal(load(&d, idx_spec, "one.csv"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "one.csv: a file where a folder "
			       "with one *images* and one *labels* IDX file"));
	assert_non_null(strstr(fm_error_msg(), "this task's data is IDX"));
	assert_int_equal(load(&d, idx_spec, "nothing"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "nothing: No such file"));
	assert_null(d.x);
}

static void test_data__csv_label_outside_the_classes(void **state)
{
	/* the bad label sits on line 6: line 3 is blank */
	static const char text[] = "a,b,y\n1,2,0\n\n3,4,2\n5,6,1\n7,8,3\n";
	struct ml_dataset d = { 0 };

	(void)state;
	write_file("bad.csv", text, strlen(text));
	assert_int_equal(load(&d, csv_spec, "bad.csv"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "bad.csv:6: label 3 in column "
			       "'y' is not a class of this task (0..2)"));
	write_file("good.csv", text, strlen(text) - 6);
	assert_int_equal(load(&d, csv_spec, "good.csv"), FM_OK);
	assert_int_equal(d.n, 3);
	ml_dataset_cleanup(&d);
}

static void rm_tree(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data__idx_label_outside_the_classes),
		cmocka_unit_test(test_data__idx_pair_in_the_other_order),
		cmocka_unit_test(test_data__wrong_kind_of_path),
		cmocka_unit_test(test_data__csv_label_outside_the_classes),
	};
	int rc;

	if (!mkdtemp(root))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm_tree();
	return rc;
}
