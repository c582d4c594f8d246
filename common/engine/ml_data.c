/* Data sets: IDX files (plain or gzip) and CSV, with the preprocessing
 * Disco names (scaling, standardization, bilinear resize) and seeded
 * splits. Sizes come from headers and are bounded before allocation. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CSV_MAX_LINE (1u << 20)
#define CSV_MAX_COLS 65536

void ml_dataset_cleanup(struct ml_dataset *d)
{
	free(d->x);
	free(d->y);
	memset(d, 0, sizeof(*d));
}

/* ---- IDX -------------------------------------------------------------- */

struct idx_file {
	gzFile f;
	const char *path;
	int type;            /* 0x08 ubyte ... 0x0E double */
	int ndim;
	uint32_t dim[4];
	size_t count;        /* dim[0] */
	size_t per;          /* elements per item */
};

static size_t idx_elem_size(int type)
{
	switch (type) {
	case 0x08: case 0x09: return 1;
	case 0x0B: return 2;
	case 0x0C: case 0x0D: return 4;
	case 0x0E: return 8;
	}
	return 0;
}

static int idx_read(struct idx_file *x, void *p, size_t n, const char *what)
{
	int got = gzread(x->f, p, (unsigned)n);

	if (got < 0) {
		int e;
		const char *m = gzerror(x->f, &e);

		return fm_error_set(FM_EINVAL, "%s: %s while reading %s",
				    x->path, m, what);
	}
	if ((size_t)got != n)
		return fm_error_set(FM_EINVAL, "%s: truncated (%s)", x->path,
				    what);
	return FM_OK;
}

/* deflate's best ratio is 1032:1: a gzip file of n bytes holds less */
#define GZ_MAX_RATIO 1033

/* The items the header gives must fit in the file (or in what it can
 * inflate to) before anything is allocated for them. */
static int idx_size_check(const struct idx_file *x, size_t header)
{
	struct stat st;
	size_t need = x->count * x->per * idx_elem_size(x->type);
	size_t have;

	if (stat(x->path, &st) != 0 || !S_ISREG(st.st_mode))
		return FM_OK; /* a pipe: idx_body finds a short file */
	have = (size_t)st.st_size;
	if (gzdirect(x->f) ? have - header < need :
	    have > SIZE_MAX / GZ_MAX_RATIO || have * GZ_MAX_RATIO < need)
		return fm_error_set(FM_EINVAL, "%s: truncated: the header "
				    "gives %zu items of %zu values (%zu "
				    "bytes), the file has %zu bytes", x->path,
				    x->count, x->per, need, have);
	return FM_OK;
}

static int looks_like_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n')
			return 0;
	return 1;
}

static int idx_open(struct idx_file *x, const char *path)
{
	unsigned char h[16];
	struct stat st;
	int err;

	memset(x, 0, sizeof(*x));
	x->path = path;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return fm_error_set(FM_EINVAL, "%s: a folder where an IDX file "
				    "was expected", path);
	x->f = gzopen(path, "rb");
	if (!x->f)
		return fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EIO,
				    "%s: %s", path, strerror(errno));
	gzbuffer(x->f, 1 << 17);
	err = idx_read(x, h, 4, "the header");
	if (err)
		return err;
	x->type = h[2];
	x->ndim = h[3];
	if (h[0] != 0 || h[1] != 0 || !idx_elem_size(x->type))
		return fm_error_set(FM_EINVAL, "%s: not an IDX file (magic "
				    "%02x%02x%02x%02x%s)", path, h[0], h[1],
				    h[2], h[3], looks_like_text(h, 4)
				    ? ": it starts with text, a CSV file?"
				    : "");
	if (x->ndim < 1 || x->ndim > 4)
		return fm_error_set(FM_EINVAL, "%s: %d dimensions (1 to 4 "
				    "supported)", path, x->ndim);
	err = idx_read(x, h, 4 * (size_t)x->ndim, "the dimensions");
	if (err)
		return err;
	x->per = 1;
	for (int i = 0; i < x->ndim; i++) {
		x->dim[i] = (uint32_t)h[4 * i] << 24 | (uint32_t)h[4 * i + 1] << 16 |
			    (uint32_t)h[4 * i + 2] << 8 | h[4 * i + 3];
		if (i > 0 && (x->dim[i] < 1 || x->dim[i] > ML_MAX_DIM))
			return fm_error_set(FM_EINVAL, "%s: dimension %d is %u "
					    "(1..%d allowed)", path, i,
					    x->dim[i], ML_MAX_DIM);
		if (i > 0)
			x->per = ml__mul(x->per, x->dim[i], ML_MAX_SAMPLE);
	}
	x->count = x->dim[0];
	if (!x->per)
		return fm_error_set(FM_EINVAL, "%s: one item has more than %u "
				    "values", path, ML_MAX_SAMPLE);
	if (!ml__mul(x->count ? x->count : 1, x->per, ML_MAX_DATA_FLOATS))
		return fm_error_set(FM_ETOOLARGE, "%s: %zu items of %zu values "
				    "is over the limit of %llu values", path,
				    x->count, x->per, ML_MAX_DATA_FLOATS);
	return idx_size_check(x, 4 + 4 * (size_t)x->ndim);
}

static float idx_value(const unsigned char *p, int type)
{
	uint32_t u;
	uint64_t v;
	float f;
	double d;

	switch (type) {
	case 0x08: return (float)p[0];
	case 0x09: return (float)(signed char)p[0];
	case 0x0B: return (float)(int16_t)(p[0] << 8 | p[1]);
	case 0x0C:
	case 0x0D:
		u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		if (type == 0x0C)
			return (float)(int32_t)u;
		memcpy(&f, &u, 4);
		return f;
	default:
		v = 0;
		for (int i = 0; i < 8; i++)
			v = v << 8 | p[i];
		memcpy(&d, &v, 8);
		return (float)d;
	}
}

/* Reads all items into out (count * per floats) and checks the end. */
static int idx_body(struct idx_file *x, float *out)
{
	unsigned char chunk[1 << 16];
	size_t es = idx_elem_size(x->type), left = x->count * x->per;
	size_t per_chunk = sizeof(chunk) / es, k = 0;
	int err;

	while (left) {
		size_t n = left < per_chunk ? left : per_chunk;

		err = idx_read(x, chunk, n * es, "the data");
		if (err)
			return err;
		for (size_t i = 0; i < n; i++, k++) {
			out[k] = idx_value(chunk + i * es, x->type);
			if (!isfinite(out[k]))
				return fm_error_set(FM_EINVAL, "%s: sample %zu: "
						    "value %zu is not finite",
						    x->path, k / x->per + 1,
						    k % x->per + 1);
		}
		left -= n;
	}
	if (gzread(x->f, chunk, 1) != 0)
		return fm_error_set(FM_EINVAL, "%s: data after the %zu items "
				    "the header gives", x->path, x->count);
	return FM_OK;
}

/* Images have 2+ dimensions ([count, h, w...]), labels 1 or 2 ([count]
 * or one-hot [count, k]), and as many items; a pair given the other way
 * round is named as such. */
static int idx_roles(const struct idx_file *xi, const struct idx_file *yi)
{
	int swapped = yi && xi->ndim == 1 && yi->ndim >= 2;

	if (xi->ndim < 2)
		return fm_error_set(FM_EINVAL, "%s: an IDX label file (1 "
				    "dimension) where images (2+ dimensions) "
				    "were expected%s", xi->path, swapped
				    ? ": were IMAGES,LABELS given in the other "
				      "order?" : "");
	if (yi && yi->ndim > 2)
		return fm_error_set(FM_EINVAL, "%s: an IDX file of %d "
				    "dimensions (images?) where labels (1 "
				    "dimension, or 2 for one-hot rows) were "
				    "expected", yi->path, yi->ndim);
	if (yi && yi->count != xi->count)
		return fm_error_set(FM_EINVAL, "%s has %zu items but %s has "
				    "%zu: images and labels must be the same "
				    "samples", xi->path, xi->count, yi->path,
				    yi->count);
	return FM_OK;
}

int ml_dataset_load_idx(struct ml_dataset *out, const char *images,
			const char *labels)
{
	struct idx_file xi = { 0 }, yi = { 0 };
	struct ml_dataset d = { 0 };
	int err;

	err = idx_open(&xi, images);
	if (err)
		goto done;
	if (labels)
		err = idx_open(&yi, labels);
	if (err)
		goto done;
	err = idx_roles(&xi, labels ? &yi : NULL);
	if (err)
		goto done;
	d.n = xi.count;
	d.x_shape.rank = xi.ndim - 1;
	for (int i = 1; i < xi.ndim; i++)
		d.x_shape.dim[i - 1] = (int)xi.dim[i];
	d.x_size = xi.per;
	d.y_size = labels ? yi.per : 0;
	d.x = malloc(d.n * d.x_size * sizeof(float) + 1);
	d.y = malloc(d.n * d.y_size * sizeof(float) + 1);
	if (!d.x || !d.y) {
		err = fm_error_set(FM_ENOMEM, "%s: out of memory for %zu "
				   "items", images, d.n);
		goto done;
	}
	err = idx_body(&xi, d.x);
	if (err)
		goto done;
	if (labels)
		err = idx_body(&yi, d.y);
done:
	if (xi.f)
		gzclose(xi.f);
	if (yi.f)
		gzclose(yi.f);
	if (err) {
		ml_dataset_cleanup(&d);
		return err;
	}
	*out = d;
	return FM_OK;
}

/* ---- CSV -------------------------------------------------------------- */

struct csv {
	FILE *f;
	const char *path;
	size_t line;
	char *buf;           /* CSV_MAX_LINE + 1 */
	char **fields;       /* CSV_MAX_COLS */
	size_t n_fields;
};

/* Reads one line into c->buf and splits it in place; 0 at end of file. */
static int csv_next(struct csv *c, int *got)
{
	size_t len = 0, nf = 0;
	int ch, quoted = 0, field_start = 1;

	*got = 0;
	while ((ch = getc(c->f)) != EOF) {
		if (ch == '\n' && !quoted)
			break;
		if (ch == '\0')
			return fm_error_set(FM_EINVAL, "%s:%zu: a NUL byte: a "
					    "binary file (IDX?) where CSV text "
					    "was expected", c->path,
					    c->line + 1);
		if (len == CSV_MAX_LINE)
			return fm_error_set(FM_EINVAL, "%s:%zu: line longer "
					    "than %u bytes", c->path,
					    c->line + 1, CSV_MAX_LINE);
		c->buf[len++] = (char)ch;
		if (ch == '"')
			quoted = !quoted;
	}
	if (ferror(c->f))
		return fm_error_set(FM_EIO, "%s: read error: %s", c->path,
				    strerror(errno));
	if (ch == EOF && len == 0)
		return FM_OK;
	c->line++;
	if (quoted)
		return fm_error_set(FM_EINVAL, "%s:%zu: unterminated quote",
				    c->path, c->line);
	if (len && c->buf[len - 1] == '\r')
		len--;
	c->buf[len] = '\0';
	/* split on commas outside quotes; unquote "..." with "" escapes */
	for (char *r = c->buf, *w = c->buf;; r++) {
		if (field_start) {
			if (nf == CSV_MAX_COLS)
				return fm_error_set(FM_EINVAL, "%s:%zu: more "
						    "than %u columns", c->path,
						    c->line, CSV_MAX_COLS);
			c->fields[nf++] = w;
			field_start = 0;
		}
		if (*r == '"') {
			if (quoted && r[1] == '"') {
				*w++ = '"';
				r++;
			} else {
				quoted = !quoted;
			}
			continue;
		}
		if ((*r == ',' && !quoted) || *r == '\0') {
			int end = *r == '\0';

			*w++ = '\0';
			field_start = 1;
			if (end)
				break;
			continue;
		}
		*w++ = *r;
	}
	c->n_fields = nf;
	*got = 1;
	return FM_OK;
}

static int csv_number(const struct csv *c, size_t col, const char *name,
		      float *out)
{
	const char *s = c->fields[col];
	char *end;
	double v;

	while (*s == ' ' || *s == '\t')
		s++;
	errno = 0;
	v = strtod(s, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	if (end == s || *end != '\0' || !isfinite(v) || fabs(v) > 3.4e38)
		return fm_error_set(FM_EINVAL, "%s:%zu: column '%s': '%s' is "
				    "not a finite number", c->path, c->line,
				    name, c->fields[col]);
	*out = (float)v;
	return FM_OK;
}

static int grow(float **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 1024;
	float *q;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return FM_OK;
	if (n > ML_MAX_DATA_FLOATS)
		return fm_error_set(FM_ETOOLARGE, "CSV: more than %llu values",
				    ML_MAX_DATA_FLOATS);
	q = realloc(*p, n * sizeof(float));
	if (!q)
		return fm_error_set(FM_ENOMEM, "CSV: out of memory");
	*p = q;
	*cap = n;
	return FM_OK;
}

/* Named columns and where the header has them. */
struct csv_cols {
	const char *const *names;
	size_t n;
	size_t *col;
};

static int csv_columns(const struct csv *c, const struct csv_cols *k)
{
	for (size_t i = 0; i < k->n; i++) {
		size_t j;

		for (j = 0; j < c->n_fields; j++)
			if (strcmp(c->fields[j], k->names[i]) == 0)
				break;
		if (j == c->n_fields)
			return fm_error_set(FM_EINVAL, "%s: no column '%s' in "
					    "the header", c->path, k->names[i]);
		k->col[i] = j;
	}
	return FM_OK;
}

/* The current row's values of columns k into v[0 .. k->n). */
static int csv_values(const struct csv *c, const struct csv_cols *k,
		      float *v)
{
	for (size_t i = 0; i < k->n; i++) {
		int err = csv_number(c, k->col[i], k->names[i], &v[i]);

		if (err)
			return err;
	}
	return FM_OK;
}

/* The header line: where the input and output columns are. */
static int csv_header(struct csv *c, const struct csv_cols *in,
		      const struct csv_cols *out)
{
	int got, err;

	err = csv_next(c, &got);
	if (err)
		return err;
	if (!got)
		return fm_error_set(FM_EINVAL, "%s: empty file (a header line "
				    "is needed)", c->path);
	err = csv_columns(c, in);
	if (err)
		return err;
	return csv_columns(c, out);
}

/* The data rows after the header into d (whose sizes are set). */
static int csv_rows(struct csv *c, const struct csv_cols *in,
		    const struct csv_cols *out, struct ml_dataset *d)
{
	size_t header_cols = c->n_fields, xcap = 0, ycap = 0;
	int got, err;

	for (;;) {
		err = csv_next(c, &got);
		if (err)
			return err;
		if (!got)
			break;
		if (c->n_fields == 1 && c->fields[0][0] == '\0')
			continue; /* blank line */
		if (c->n_fields != header_cols)
			return fm_error_set(FM_EINVAL, "%s:%zu: %zu columns, "
					    "the header has %zu", c->path,
					    c->line, c->n_fields, header_cols);
		err = grow(&d->x, &xcap, (d->n + 1) * d->x_size);
		if (err)
			return err;
		err = grow(&d->y, &ycap, (d->n + 1) * d->y_size + 1);
		if (err)
			return err;
		err = csv_values(c, in, &d->x[d->n * d->x_size]);
		if (err)
			return err;
		err = csv_values(c, out, &d->y[d->n * d->y_size]);
		if (err)
			return err;
		d->n++;
	}
	if (d->n == 0)
		return fm_error_set(FM_EINVAL, "%s: no data rows", c->path);
	return FM_OK;
}

static void csv_close(struct csv *c)
{
	if (c->f)
		fclose(c->f);
	free(c->buf);
	free(c->fields);
	memset(c, 0, sizeof(*c));
}

static int csv_open(struct csv *c, const char *path)
{
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->path = path;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return fm_error_set(FM_EINVAL, "%s: a folder where a CSV file "
				    "was expected", path);
	c->f = fopen(path, "rb");
	if (!c->f)
		return fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EIO,
				    "%s: %s", path, strerror(errno));
	c->buf = malloc(CSV_MAX_LINE + 1);
	c->fields = malloc(CSV_MAX_COLS * sizeof(*c->fields));
	if (!c->buf || !c->fields)
		return fm_error_set(FM_ENOMEM, "%s: out of memory", path);
	return FM_OK;
}

int ml_dataset_load_csv(struct ml_dataset *out, const char *path,
			const char *const *inputs, size_t n_inputs,
			const char *const *outputs, size_t n_outputs)
{
	struct csv c = { 0 };
	struct ml_dataset d = { 0 };
	struct csv_cols in = { inputs, n_inputs, NULL };
	struct csv_cols outc = { outputs, n_outputs, NULL };
	int err;

	if (n_inputs < 1 || n_inputs > CSV_MAX_COLS ||
	    n_outputs > CSV_MAX_COLS)
		return fm_error_set(FM_EINVAL, "%s: give 1 to %u input columns",
				    path, CSV_MAX_COLS);
	err = csv_open(&c, path);
	if (err)
		goto done;
	in.col = malloc(n_inputs * sizeof(*in.col));
	outc.col = malloc((n_outputs + 1) * sizeof(*outc.col));
	if (!in.col || !outc.col) {
		err = fm_error_set(FM_ENOMEM, "%s: out of memory", path);
		goto done;
	}
	err = csv_header(&c, &in, &outc);
	if (err)
		goto done;
	d.x_size = n_inputs;
	d.x_shape.rank = 1;
	d.x_shape.dim[0] = (int)n_inputs;
	d.y_size = n_outputs;
	err = csv_rows(&c, &in, &outc, &d);
	if (err)
		goto done;
	*out = d;
	d = (struct ml_dataset){ 0 };
done:
	csv_close(&c);
	free(in.col);
	free(outc.col);
	ml_dataset_cleanup(&d);
	return err;
}

int ml_dataset_csv_line(size_t *line, const char *path, size_t sample)
{
	struct csv c;
	size_t row = 0;
	int got = 0, err = csv_open(&c, path);

	if (err)
		goto done;
	err = csv_next(&c, &got); /* the header */
	while (!err && got) {
		err = csv_next(&c, &got);
		if (err || !got)
			break;
		if (c.n_fields == 1 && c.fields[0][0] == '\0')
			continue; /* blank lines hold no sample */
		if (row++ == sample) {
			*line = c.line;
			goto done;
		}
	}
	if (!err)
		err = fm_error_set(FM_ENOTFOUND, "%s: no sample %zu", path,
				   sample + 1);
done:
	csv_close(&c);
	return err;
}

/* ---- subsets and preprocessing ---------------------------------------- */

int ml_dataset_subset(struct ml_dataset *out, const struct ml_dataset *d,
		      const size_t *idx, size_t n)
{
	struct ml_dataset s = *d;

	for (size_t i = 0; i < n; i++)
		if (idx[i] >= d->n)
			return fm_error_set(FM_EINVAL, "subset: index %zu is "
					    "out of range (%zu samples)",
					    idx[i], d->n);
	s.n = n;
	s.x = malloc(n * d->x_size * sizeof(float) + 1);
	s.y = malloc(n * d->y_size * sizeof(float) + 1);
	if (!s.x || !s.y) {
		free(s.x);
		free(s.y);
		return fm_error_set(FM_ENOMEM, "subset: out of memory for %zu "
				    "samples", n);
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(s.x + i * d->x_size, d->x + idx[i] * d->x_size,
		       d->x_size * sizeof(float));
		memcpy(s.y + i * d->y_size, d->y + idx[i] * d->y_size,
		       d->y_size * sizeof(float));
	}
	*out = s;
	return FM_OK;
}

int ml_dataset_split(struct ml_dataset *first, struct ml_dataset *second,
		     const struct ml_dataset *d, double fraction,
		     uint64_t seed)
{
	struct ml_dataset a = { 0 }, b = { 0 };
	struct ml_rng r;
	size_t *idx, nb;
	int err;

	if (!(fraction >= 0 && fraction <= 1))
		return fm_error_set(FM_EINVAL, "split: fraction %g is not in "
				    "[0, 1]", fraction);
	idx = malloc((d->n + 1) * sizeof(*idx));
	if (!idx)
		return fm_error_set(FM_ENOMEM, "split: out of memory");
	for (size_t i = 0; i < d->n; i++)
		idx[i] = i;
	ml_rng_seed(&r, seed);
	ml_rng_shuffle(&r, idx, d->n);
	nb = (size_t)floor((double)d->n * fraction);
	err = ml_dataset_subset(&a, d, idx, d->n - nb);
	if (err)
		goto done;
	err = ml_dataset_subset(&b, d, idx + d->n - nb, nb);
	if (err)
		goto done;
	*first = a;
	*second = b;
	a = (struct ml_dataset){ 0 };
done:
	free(idx);
	ml_dataset_cleanup(&a);
	return err;
}

void ml_dataset_scale(struct ml_dataset *d, float divisor)
{
	size_t n = d->n * d->x_size;

	/* a true division (not a reciprocal product) matches numpy's and
	 * TensorFlow.js' x / 255 bit for bit */
	for (size_t i = 0; i < n; i++)
		d->x[i] /= divisor;
}

void ml_dataset_stats(const struct ml_dataset *d, float *mean, float *std)
{
	for (size_t j = 0; j < d->x_size; j++) {
		double s = 0, ss = 0;

		for (size_t i = 0; i < d->n; i++)
			s += d->x[i * d->x_size + j];
		s = d->n ? s / (double)d->n : 0;
		for (size_t i = 0; i < d->n; i++) {
			double e = d->x[i * d->x_size + j] - s;

			ss += e * e;
		}
		ss = d->n ? sqrt(ss / (double)d->n) : 0;
		mean[j] = (float)s;
		std[j] = ss > 1e-12 ? (float)ss : 1.0f;
	}
}

void ml_dataset_standardize(struct ml_dataset *d, const float *mean,
			    const float *std)
{
	for (size_t i = 0; i < d->n; i++)
		for (size_t j = 0; j < d->x_size; j++)
			d->x[i * d->x_size + j] =
				(d->x[i * d->x_size + j] - mean[j]) / std[j];
}

/* As TensorFlow's resize_bilinear without corner alignment or half-pixel
 * centers: source coordinate = destination * (in / out). */
int ml_dataset_resize(struct ml_dataset *d, int nh, int nw)
{
	int h, w, c;
	size_t per;
	float *x;

	if (d->x_shape.rank < 2)
		return fm_error_set(FM_EINVAL, "resize: samples are not images "
				    "(shape needs (h, w) or (h, w, c))");
	if (nh < 1 || nw < 1 || nh > 65536 || nw > 65536)
		return fm_error_set(FM_EINVAL, "resize: size %dx%d is out of "
				    "range", nh, nw);
	h = d->x_shape.dim[0];
	w = d->x_shape.dim[1];
	c = d->x_shape.rank == 3 ? d->x_shape.dim[2] : 1;
	per = ml__mul(ml__mul((size_t)nh, (size_t)nw, ML_MAX_SAMPLE),
		      (size_t)c, ML_MAX_SAMPLE);
	if (!per || !ml__mul(per, d->n ? d->n : 1, ML_MAX_DATA_FLOATS))
		return fm_error_set(FM_ETOOLARGE, "resize: %dx%d images are "
				    "too large", nh, nw);
	x = malloc(per * d->n * sizeof(float) + 1);
	if (!x)
		return fm_error_set(FM_ENOMEM, "resize: out of memory");
	for (size_t s = 0; s < d->n; s++) {
		const float *src = d->x + s * d->x_size;
		float *dst = x + s * per;

		for (int y = 0; y < nh; y++) {
			float fy = (float)y * (float)h / (float)nh;
			int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
			float ay = fy - (float)y0;

			for (int xx = 0; xx < nw; xx++) {
				float fx = (float)xx * (float)w / (float)nw;
				int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
				float ax = fx - (float)x0;

				for (int k = 0; k < c; k++) {
					float tl = src[((size_t)y0 * w + x0) * c + k];
					float tr = src[((size_t)y0 * w + x1) * c + k];
					float bl = src[((size_t)y1 * w + x0) * c + k];
					float br = src[((size_t)y1 * w + x1) * c + k];
					float top = tl + (tr - tl) * ax;
					float bot = bl + (br - bl) * ax;

					*dst++ = top + (bot - top) * ay;
				}
			}
		}
	}
	free(d->x);
	d->x = x;
	d->x_shape.dim[0] = nh;
	d->x_shape.dim[1] = nw;
	d->x_size = per;
	return FM_OK;
}
