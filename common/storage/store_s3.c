/* s3://bucket[/prefix] backend: S3 REST calls signed with SigV4 by
 * libcurl. libcurl 7.88 does not send x-amz-content-sha256, which S3
 * servers require, so every request carries it: the body's hash when
 * known, UNSIGNED-PAYLOAD for streamed bodies of unknown hash. */
#include "storage/store_int.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define LIST_PAGE_MAX (8u << 20)
#define LIST_PAGES_MAX 100000

/* Copies the text of the first <tag>...</tag> in xml into out. */
static int xml_tag(const char *xml, const char *tag, char *out, size_t n)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(xml, open);
	if (!a)
		return 0;
	a += strlen(open);
	b = strstr(a, close);
	if (!b)
		return 0;
	snprintf(out, n, "%.*s", (int)(b - a), a);
	return 1;
}

static int is_auth_code(const char *code)
{
	static const char *const codes[] = {
		"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
		"ExpiredToken", "AuthorizationHeaderMalformed",
		"InvalidSecurity", "RequestTimeTooSkewed", NULL
	};

	for (int i = 0; codes[i]; i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

/* Maps a non-2xx S3 answer to an error naming what and S3's own code. */
static int s3_error(const struct store *s, const char *what,
		    const struct store__req *r)
{
	char code[64] = "", msg[256] = "";

	xml_tag(r->err_body, "Code", code, sizeof(code));
	xml_tag(r->err_body, "Message", msg, sizeof(msg));
	if (r->status == 403 && (is_auth_code(code) || !code[0]))
		return fm_error_set(FM_EAUTH, "%s: %s refused the credentials "
				    "(%s): check s3_access_key and "
				    "s3_secret_key", what, s->url,
				    code[0] ? code : "403 without a reason");
	if (r->status == 404 && strcmp(code, "NoSuchBucket") == 0)
		return fm_error_set(FM_ENOTFOUND, "%s: bucket \"%s\" does not "
				    "exist (store_ensure or --create makes it)",
				    what, s->bucket);
	if (!code[0])
		return store__http_status_error(s, what, r->status);
	if (r->status == 404)
		return fm_error_set(FM_ENOTFOUND, "%s: not found in %s", what,
				    s->url);
	return fm_error_set(r->status == 403 ? FM_EFORBIDDEN :
			    r->status == 409 ? FM_ECONFLICT :
			    r->status >= 500 ? FM_EUNAVAIL : FM_EINVAL,
			    "%s: %s answered %ld %s%s%s", what, s->url,
			    r->status, code, msg[0] ? ": " : "", msg);
}

static int s3_call(struct store *s, const char *method, const char *key,
		   struct store__src *src, struct store__sink *k,
		   const struct store_xfer *x, struct store__req *r)
{
	char url[4096];

	if (snprintf(url, sizeof(url), "%s%s", s->base, key) >=
	    (int)sizeof(url))
		return fm_error_set(FM_EINVAL, "%s: URL is too long", key);
	r->method = method;
	r->url = url;
	r->src = src;
	r->sink = k;
	r->x = x;
	if (!r->payload_sha)
		r->payload_sha = src ? (src->sha256_hex ? src->sha256_hex :
					"UNSIGNED-PAYLOAD") : EMPTY_SHA256;
	return store__http_do(s, r);
}

static int ok_status(long status)
{
	return status >= 200 && status < 300;
}

static int s3_put(struct store *s, const char *key, struct store__src *src,
		  const struct store_xfer *x)
{
	struct store__req r = { 0 };
	int err = s3_call(s, "PUT", key, src, NULL, x, &r);

	if (err)
		return err;
	if (!ok_status(r.status))
		return s3_error(s, key, &r);
	return FM_OK;
}

static int s3_get(struct store *s, const char *key, struct store__sink *k,
		  const struct store_xfer *x)
{
	struct store__req r = { 0 };
	int err = s3_call(s, "GET", key, NULL, k, x, &r);

	if (err)
		return err;
	if (!ok_status(r.status))
		return s3_error(s, key, &r);
	return FM_OK;
}

static int s3_head(struct store *s, const char *key, uint64_t *size)
{
	struct store__req r = { 0 };
	int err = s3_call(s, "HEAD", key, NULL, NULL, NULL, &r);

	if (err)
		return err;
	if (!ok_status(r.status))
		return s3_error(s, key, &r);
	if (r.length == STORE_UNKNOWN)
		return fm_error_set(FM_EUNAVAIL, "%s: %s gave no size for it",
				    key, s->url);
	*size = r.length;
	return FM_OK;
}

static int s3_del(struct store *s, const char *key)
{
	struct store__req r = { 0 };
	int err = s3_call(s, "DELETE", key, NULL, NULL, NULL, &r);

	if (err)
		return err;
	if (r.status != 404 && !ok_status(r.status))
		return s3_error(s, key, &r);
	return FM_OK;
}

/* Bucket-level request: url is the bucket URL plus query. */
static int s3_bucket_call(struct store *s, const char *method,
			  const char *url, struct store__src *src,
			  struct store__sink *k, struct store__req *r)
{
	r->method = method;
	r->url = url;
	r->src = src;
	r->sink = k;
	r->payload_sha = src ? src->sha256_hex : EMPTY_SHA256;
	return store__http_do(s, r);
}

/* Some servers answer "exists" for our own bucket too: it is ours if we
 * may look into it. */
static int bucket_is_ours(struct store *s)
{
	struct store__req h = { 0 };

	return s3_bucket_call(s, "HEAD", s->bucket_url, NULL, NULL, &h) ==
		       FM_OK && ok_status(h.status);
}

static int s3_ensure(struct store *s)
{
	struct store__req r = { 0 };
	struct store__mem_src src;
	char body[256], hex[SHA256_HEX_LEN + 1];
	int n = 0, err;

	/* us-east-1 is the one region that takes no location body */
	if (strcmp(s->region, "us-east-1") != 0)
		n = snprintf(body, sizeof(body),
			     "<CreateBucketConfiguration xmlns=\"http://s3."
			     "amazonaws.com/doc/2006-03-01/\"><Location"
			     "Constraint>%s</LocationConstraint></Create"
			     "BucketConfiguration>", s->region);
	fm_sha256_hex(hex, body, (size_t)n);
	store__mem_src_init(&src, body, (size_t)n, hex);
	err = s3_bucket_call(s, "PUT", s->bucket_url, &src.base, NULL, &r);
	if (err || ok_status(r.status))
		return err;
	if (r.status == 409 && strstr(r.err_body, "BucketAlreadyOwnedByYou"))
		return FM_OK;
	if (r.status == 409 && bucket_is_ours(s))
		return FM_OK;
	return s3_error(s, s->bucket, &r);
}

static void xml_unescape(char *t)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		     { "&quot;", '"' }, { "&apos;", '\'' } };
	char *w = t;

	for (const char *p = t; *p;) {
		size_t i;

		for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
			size_t l = strlen(ents[i].ent);

			if (strncmp(p, ents[i].ent, l) == 0) {
				*w++ = ents[i].c;
				p += l;
				break;
			}
		}
		if (i == sizeof(ents) / sizeof(ents[0]))
			*w++ = *p++;
	}
	*w = '\0';
}

/* Calls fn for each <Contents> of one ListObjectsV2 page. */
static int list_page(struct store *s, const char *xml, store_list_fn fn,
		     void *ud)
{
	size_t plen = strlen(s->prefix);
	const char *p = xml;
	char key[STORE_KEY_MAX * 6 + 1], size[32];

	while ((p = strstr(p, "<Contents>"))) {
		const char *end = strstr(p, "</Contents>");
		char item[sizeof(key) + 512];
		char *stop;
		unsigned long long n;
		int err;

		if (!end)
			break;
		snprintf(item, sizeof(item), "%.*s", (int)(end - p), p);
		p = end;
		if (!xml_tag(item, "Key", key, sizeof(key)) ||
		    !xml_tag(item, "Size", size, sizeof(size)))
			continue;
		xml_unescape(key);
		n = strtoull(size, &stop, 10);
		if (*stop || strncmp(key, s->prefix, plen) != 0 ||
		    store_key_check(key + plen) != FM_OK)
			continue; /* not one of ours */
		err = fn(ud, key + plen, n);
		if (err)
			return err;
	}
	return FM_OK;
}

/* One page of the bucket's list into page, after token when set. */
static int list_fetch(struct store *s, struct buf *page, const char *token,
		      const char *eprefix)
{
	struct store__req r = { 0 };
	struct store__mem_sink k;
	char url[8192];
	char *etoken = NULL;
	int err;

	/* SigV4 signs the query as sent: keep it sorted and encoded */
	if (token[0]) {
		etoken = curl_easy_escape(NULL, token, 0);
		if (!etoken)
			return fm_error_set(FM_ENOMEM, "out of memory");
	}
	snprintf(url, sizeof(url), "%s?%s%s%slist-type=2&prefix=%s",
		 s->bucket_url, etoken ? "continuation-token=" : "",
		 etoken ? etoken : "", etoken ? "&" : "", eprefix);
	curl_free(etoken);
	buf_reset(page);
	store__mem_sink_init(&k, page, LIST_PAGE_MAX, "bucket list");
	err = s3_bucket_call(s, "GET", url, NULL, &k.base, &r);
	if (err)
		return err;
	if (!ok_status(r.status))
		return s3_error(s, "list", &r);
	return FM_OK;
}

static int s3_list(struct store *s, const char *prefix, store_list_fn fn,
		   void *ud)
{
	struct buf page = BUF_INIT(LIST_PAGE_MAX);
	char full[STORE_KEY_MAX + 600], token[1024] = "", truncated[8];
	char *eprefix = NULL;
	int err = FM_OK;

	snprintf(full, sizeof(full), "%s%s", s->prefix, prefix);
	eprefix = curl_easy_escape(NULL, full, 0);
	if (!eprefix)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (int i = 0; i < LIST_PAGES_MAX; i++) {
		err = list_fetch(s, &page, token, eprefix);
		if (err)
			goto done;
		if (!page.data)
			break;
		err = list_page(s, page.data, fn, ud);
		if (err)
			goto done;
		if (!xml_tag(page.data, "IsTruncated", truncated,
			     sizeof(truncated)) ||
		    strcmp(truncated, "true") != 0)
			break;
		if (!xml_tag(page.data, "NextContinuationToken", token,
			     sizeof(token)) || !token[0]) {
			err = fm_error_set(FM_EUNAVAIL, "%s: truncated list "
					   "without a continuation token",
					   s->url);
			goto done;
		}
		xml_unescape(token);
	}
done:
	curl_free(eprefix);
	buf_cleanup(&page);
	return err;
}

static const struct store__ops s3_ops = {
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.del = s3_del,
	.ensure = s3_ensure,
	.list = s3_list,
	.free = store__http_free,
};

static int bucket_check(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return fm_error_set(FM_EINVAL, "s3 bucket \"%.*s\": expected 3 "
				    "to 63 characters", (int)n, b);
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && c != '-' && c != '.')
			return fm_error_set(FM_EINVAL, "s3 bucket \"%.*s\": "
					    "character '%c' is not allowed "
					    "(a-z 0-9 . -)", (int)n, b, c);
		if (!alnum && (i == 0 || i == n - 1))
			return fm_error_set(FM_EINVAL, "s3 bucket \"%.*s\": must"
					    " start and end with a letter or "
					    "digit", (int)n, b);
	}
	return FM_OK;
}

static int region_check(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63)
		return fm_error_set(FM_EINVAL, "s3_region \"%s\": expected 1 to "
				    "63 characters", r);
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') ||
		      (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return fm_error_set(FM_EINVAL, "s3_region \"%s\": "
					    "character '%c' is not allowed",
					    r, r[i]);
	return FM_OK;
}

/* The bucket's URL from the endpoint: endpoint/bucket (path style) or
 * scheme://bucket.host (virtual-hosted style). */
static int bucket_url(struct store *s, const char *endpoint, int path_style)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int err = FM_OK;
	size_t n;

	if (!u)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		err = fm_error_set(FM_EINVAL, "s3_endpoint \"%.200s\": expected "
				   "http(s)://host[:port]", endpoint);
		goto done;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	n = path ? strlen(path) : 0;
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (path_style)
		snprintf(s->bucket_url, sizeof(s->bucket_url),
			 "%s://%s%s%s%.*s/%s", scheme, host, port ? ":" : "",
			 port ? port : "", (int)n, path ? path : "", s->bucket);
	else
		snprintf(s->bucket_url, sizeof(s->bucket_url),
			 "%s://%s.%s%s%s%.*s", scheme, s->bucket, host,
			 port ? ":" : "", port ? port : "", (int)n,
			 path ? path : "");
	snprintf(s->base, sizeof(s->base), "%s/%s", s->bucket_url, s->prefix);
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return err;
}

int store__s3_open(struct store *s, const char *rest,
		   const struct fm_config *cfg)
{
	const char *slash = strchr(rest, '/');
	size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *endpoint = cfg ? cfg->s3_endpoint : "";
	const char *region = cfg && cfg->s3_region[0] ? cfg->s3_region :
			     "us-east-1";
	const char *ak = cfg ? cfg->s3_access_key : "";
	const char *sk = cfg ? cfg->s3_secret_key : "";
	char def_endpoint[128];
	int path_style = cfg ? cfg->s3_path_style : 1;
	int err;

	err = bucket_check(rest, blen);
	if (err)
		return err;
	memcpy(s->bucket, rest, blen);
	s->bucket[blen] = '\0';
	if (slash && slash[1]) {
		size_t plen = strlen(slash + 1);

		while (plen > 0 && slash[plen] == '/')
			plen--; /* drop trailing slashes */
		if (plen + 2 > sizeof(s->prefix))
			return fm_error_set(FM_EINVAL, "s3 prefix is too long");
		snprintf(s->prefix, sizeof(s->prefix), "%.*s", (int)plen,
			 slash + 1);
		err = store_key_check(s->prefix);
		if (err)
			return fm_error_prefix("s3 prefix");
		strcat(s->prefix, "/");
	}
	err = region_check(region);
	if (err)
		return err;
	snprintf(s->region, sizeof(s->region), "%s", region);
	if (!endpoint[0]) {
		snprintf(def_endpoint, sizeof(def_endpoint),
			 "https://s3.%s.amazonaws.com", region);
		endpoint = def_endpoint;
	}
	if (!ak[0] && getenv("AWS_ACCESS_KEY_ID"))
		ak = getenv("AWS_ACCESS_KEY_ID");
	if (!sk[0] && getenv("AWS_SECRET_ACCESS_KEY"))
		sk = getenv("AWS_SECRET_ACCESS_KEY");
	if (!ak[0] || !sk[0])
		return fm_error_set(FM_EAUTH, "s3://%s: no credentials: set "
				    "s3_access_key and s3_secret_key "
				    "(FEDMARKET_S3_ACCESS_KEY, "
				    "FEDMARKET_S3_SECRET_KEY)", s->bucket);
	if (strlen(ak) >= sizeof(s->user) || strlen(sk) >= sizeof(s->pass))
		return fm_error_set(FM_EINVAL, "s3 credentials are too long");
	snprintf(s->user, sizeof(s->user), "%s", ak);
	snprintf(s->pass, sizeof(s->pass), "%s", sk);
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region);
	err = bucket_url(s, endpoint, path_style);
	if (err)
		return err;
	snprintf(s->url, sizeof(s->url), "s3://%s/%s", s->bucket, s->prefix);
	s->ops = &s3_ops;
	s->scheme = STORE_S3;
	return FM_OK;
}
