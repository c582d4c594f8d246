/* Services under load: a closed-loop HTTP/1.1 load client for taskd and
 * assignd, with the set-up it needs (an escrow on the chain, funded open
 * tasks).
 *
 *   services_bench deploy
 *       deploys the escrow with anvil's account 0 (the operator) and
 *       prints "escrow=0x... operator=0x..." for the shell.
 *   services_bench setup --taskd URL --escrow ADDR --assets REF --ids FILE
 *                        [--tasks N] [--slots N]
 *       funds N tasks of N slots each on chain (account 1 is the
 *       creator; the transactions are pipelined), creates them through
 *       POST /v1/tasks, checks that each is open, writes their ids to
 *       FILE.
 *   services_bench load --ids FILE (--read URL PATH | --assign URL)
 *                       [--conns C] [--seconds S] [--warmup S]
 *       drives GET PATH ("{id}" in it stands for one task id after the
 *       other) or signed POST /v1/tasks/{id}/assignments with C
 *       keep-alive connections for S seconds after S warm-up seconds,
 *       and prints one JSON object: req/s, latency percentiles, answers
 *       by status class, the first unexpected answer.
 *
 * Each connection is one thread doing one request at a time, as wrk's
 * connections do. Assignments are signed (EIP-191, chain/reqsig.h): each
 * connection has its own new contributor key and walks the tasks from its
 * own offset, so a contributor never takes a task twice and connections
 * seldom meet on one task row. Any answer other than the expected status
 * counts as an error. */
#include "chain/escrow.h"
#include "chain/reqsig.h"
#include "chain/rpc.h"
#include "chain/sig.h"
#include "chain/tx.h"
#include "chain/u256.h"
#include "core/buf.h"
#include "core/err.h"
#include "http/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* anvil's default accounts 0 (operator, deployer) and 1 (creator) */
#define KEY_OPERATOR \
	"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define KEY_CREATOR \
	"59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
#define REWARD_WEI "1000000000000000"

#define CONNS_MAX 1024
#define TASKS_MAX 100000
#define RESP_MAX (64u << 20)
#define SAMPLES_MAX (16u << 20) /* per connection */

struct opts {
	const char *taskd, *escrow, *assets, *ids_file;
	const char *url;       /* load: the service driven */
	const char *read_path; /* load: the GET path; NULL: assignments */
	int tasks, slots, conns;
	double seconds, warmup;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void addr_hex(char out[CHAIN_ADDR_HEX], const uint8_t a[CHAIN_ADDR_LEN])
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, a, CHAIN_ADDR_LEN);
}

static int fail(const char *what)
{
	fprintf(stderr, "services_bench: %s: %s\n", what, fm_error_msg());
	return 1;
}

/* ------------------------------------------------------------- chain */

static int cmd_deploy(void)
{
	const char *url = getenv("FEDMARKET_RPC_URL");
	struct chain_key op;
	struct chain_rpc *r = NULL;
	struct chain_tx tx;
	struct chain_receipt rc;
	char esc[CHAIN_ADDR_HEX], opa[CHAIN_ADDR_HEX];
	int err;

	if (!url) {
		fprintf(stderr, "services_bench: FEDMARKET_RPC_URL is not set\n");
		return 1;
	}
	memset(&rc, 0, sizeof(rc));
	chain_tx_init(&tx);
	err = chain_key_from_hex(&op, KEY_OPERATOR);
	if (!err)
		err = chain_rpc_new(&r, url, NULL);
	if (!err)
		err = escrow_deploy_tx(&tx);
	if (!err)
		err = chain_rpc_send_tx(r, &rc, &tx, &op, 60000);
	if (!err && (!rc.status || !rc.has_contract))
		err = fm_error_set(FM_EINTERNAL, "deployment made no contract");
	if (!err) {
		addr_hex(esc, rc.contract_address);
		addr_hex(opa, op.addr);
		printf("escrow=%s operator=%s\n", esc, opa);
	}
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	chain_rpc_free(r);
	return err ? fail("deploy") : 0;
}

/* fund(taskId, operator, deadline, reward, conns) for every task from the
 * creator, sent back to back with consecutive nonces; waits for all
 * receipts and checks that none reverted. */
static int fund_tasks(char (*ids)[67], int n, const struct chain_key *creator,
		      const char *escrow, int max_payouts, uint64_t deadline)
{
	const char *url = getenv("FEDMARKET_RPC_URL");
	struct chain_rpc *r = NULL;
	struct chain_tx tx;
	struct chain_u256 reward;
	struct chain_key op;
	struct buf raw = BUF_INIT(1 << 16);
	uint8_t esc[CHAIN_ADDR_LEN], id[32], (*hashes)[32] = NULL;
	uint64_t nonce0 = 0;
	int err, i;

	chain_tx_init(&tx);
	if (!url)
		return fm_error_set(FM_EINVAL, "FEDMARKET_RPC_URL is not set");
	hashes = calloc((size_t)n, sizeof(*hashes));
	if (!hashes)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = chain_key_from_hex(&op, KEY_OPERATOR);
	if (!err)
		err = chain_address_parse(esc, escrow, "--escrow");
	if (!err)
		err = chain_u256_parse(&reward, REWARD_WEI, "reward");
	if (!err)
		err = chain_rpc_new(&r, url, NULL);
	for (i = 0; !err && i < n; i++) {
		err = hex_decode(id, 32, ids[i]);
		if (!err)
			err = escrow_fund_tx(&tx, esc, id, op.addr, deadline,
					     &reward, (uint32_t)max_payouts);
		if (!err && i == 0) {
			/* nonce, fees and gas once; the others are alike */
			err = chain_rpc_prepare_tx(r, &tx, creator->addr);
			nonce0 = tx.nonce;
		}
		tx.nonce = nonce0 + (uint64_t)i;
		buf_reset(&raw);
		if (!err)
			err = chain_tx_sign(&raw, NULL, &tx, creator->priv);
		if (!err)
			err = chain_rpc_send_raw(r, hashes[i],
						 (const uint8_t *)raw.data,
						 raw.len);
	}
	for (i = 0; !err && i < n; i++) {
		struct chain_receipt rc;

		memset(&rc, 0, sizeof(rc));
		err = chain_rpc_wait_receipt(r, &rc, hashes[i], 120000, 20);
		if (!err && !rc.status)
			err = fm_error_set(FM_EINTERNAL,
					   "fund of task %s reverted", ids[i]);
		chain_receipt_cleanup(&rc);
	}
	buf_cleanup(&raw);
	chain_tx_cleanup(&tx);
	chain_rpc_free(r);
	free(hashes);
	return err;
}

/* ------------------------------------------------------------- tasks */

static json_t *task_spec(const char *id, const char *assets, int slots)
{
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i,"
		" s:{s:s}, s:{s:i, s:i, s:f, s:s, s:s, s:b,"
		"   s:{s:s, s:s, s:[i,i], s:{s:f}}},"
		" s:{s:s, s:i}, s:s}",
		"task_id", id, "title", "Benchmark task",
		"description", "Fashion-MNIST classifier, for load tests.",
		"kind", "model_contributor", "reward_wei", REWARD_WEI,
		"max_assignments", slots, "assignment_duration_s", 3600,
		"lifetime_s", 86400, "validation", "strategy", "manual",
		"training", "epochs", 1, "batch_size", 32, "learning_rate",
		0.001, "optimizer", "adam", "loss",
		"sparse_categorical_crossentropy", "from_logits", 1, "data",
		"kind", "image", "format", "idx", "shape", 28, 28,
		"preprocessing", "scale", 255.0, "aggregation", "rule", "fedavg",
		"min_results_per_round", 1, "assets", assets);
}

struct creator_job {
	pthread_t thread;
	const struct opts *o;
	const struct chain_key *creator;
	char (*ids)[67];
	int from, to; /* task indexes [from, to) */
	int failed;
	char error[512];
};

static void *create_tasks(void *arg)
{
	struct creator_job *j = arg;
	struct httpc_opts ho = HTTPC_OPTS_INIT;
	struct httpc *c = NULL;

	ho.base_url = j->o->taskd;
	ho.retries = 0;
	ho.sign = reqsig_httpc_sign;
	ho.sign_arg = (void *)j->creator;
	if (httpc_new(&c, &ho)) {
		snprintf(j->error, sizeof(j->error), "%s", fm_error_msg());
		j->failed = 1;
		return NULL;
	}
	for (int i = j->from; i < j->to && !j->failed; i++) {
		json_t *spec = task_spec(j->ids[i], j->o->assets, j->o->slots);
		struct httpc_resp r;
		struct httpc_req q = { "POST", "/v1/tasks", spec, NULL, 0,
				       NULL, NULL, NULL };
		const char *state;

		httpc_resp_init(&r);
		httpc_send(c, &q, &r);
		state = json_string_value(json_object_get(r.json, "state"));
		if (r.status != 201 || !state || strcmp(state, "open")) {
			snprintf(j->error, sizeof(j->error),
				 "POST /v1/tasks: %ld %.400s", r.status,
				 r.body.data ? r.body.data : fm_error_msg());
			j->failed = 1;
		}
		httpc_resp_cleanup(&r);
		json_decref(spec);
	}
	httpc_free(c);
	return NULL;
}

/* ----------------------------------------------------- the load client */

enum phase { PH_READ, PH_ASSIGN };

struct conn {
	pthread_t thread;
	const struct opts *o;
	enum phase phase;
	const char *path;       /* PH_READ */
	char (*ids)[67];        /* PH_ASSIGN */
	int next_task, left;    /* PH_ASSIGN: where it walks, how many left */
	struct chain_key key;   /* PH_ASSIGN: the contributor */
	double t_measure, t_end;
	struct sockaddr_in addr;
	char host[64];
	int fd;
	struct buf in;
	/* results */
	uint32_t *lat_us; /* latencies of measured requests */
	size_t nlat, cap_lat;
	long ok, errors, reconnects;
	long status_count[6]; /* by status class, 1xx..5xx; [0] none */
	char first_error[400];
	int fatal;
};

static int url_addr(struct sockaddr_in *a, char *host, size_t n,
		    const char *url)
{
	unsigned b[4], port;
	char tail;

	memset(a, 0, sizeof(*a));
	if (sscanf(url, "http://%u.%u.%u.%u:%u%c", &b[0], &b[1], &b[2], &b[3],
		   &port, &tail) != 5 ||
	    b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255 ||
	    port == 0 || port > 65535)
		return fm_error_set(FM_EINVAL,
				    "%s: expected http://A.B.C.D:PORT", url);
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	a->sin_addr.s_addr =
		htonl((uint32_t)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]));
	snprintf(host, n, "%s", url + strlen("http://"));
	return FM_OK;
}

static int conn_open(struct conn *c)
{
	int one = 1;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return fm_error_set(FM_EIO, "socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&c->addr, sizeof(c->addr))) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		return fm_error_set(FM_EUNAVAIL, "connect %s: %s", c->host,
				    strerror(e));
	}
	buf_reset(&c->in);
	return FM_OK;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return fm_error_set(FM_EIO, "send: %s",
					    w < 0 ? strerror(errno) : "closed");
		p += w;
		n -= (size_t)w;
	}
	return FM_OK;
}

/* Reads one response into c->in; *status and *body (into c->in) on
 * success. Needs Content-Length (the server always sends it). */
static int read_response(struct conn *c, int *status, const char **body,
			 int *close_after)
{
	size_t head = 0, want = 0;
	int have_head = 0;

	buf_reset(&c->in);
	for (;;) {
		ssize_t r;

		if (!have_head && c->in.len > 0) {
			char *end = strstr(c->in.data, "\r\n\r\n");

			if (end) {
				const char *p = c->in.data;
				long cl = -1;

				head = (size_t)(end - c->in.data) + 4;
				if (sscanf(p, "HTTP/1.%*d %d", status) != 1)
					return fm_error_set(FM_EIO,
							    "bad status line");
				for (p = strstr(p, "\r\n"); p && p < end;
				     p = strstr(p + 2, "\r\n")) {
					if (!strncasecmp(p + 2,
							 "Content-Length:", 15))
						cl = strtol(p + 17, NULL, 10);
					else if (!strncasecmp(p + 2,
							      "Connection: close",
							      17))
						*close_after = 1;
				}
				if (cl < 0 || (size_t)cl > RESP_MAX)
					return fm_error_set(
						FM_EIO,
						"answer without a usable "
						"Content-Length");
				want = head + (size_t)cl;
				have_head = 1;
			}
		}
		if (have_head && c->in.len >= want) {
			*body = c->in.data + head;
			return FM_OK;
		}
		if (buf_reserve(&c->in, 65536))
			return FM_ETOOLARGE;
		r = recv(c->fd, c->in.data + c->in.len,
			 c->in.cap - c->in.len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fm_error_set(FM_EIO, "connection closed by the "
						    "server mid-answer");
		c->in.len += (size_t)r;
		c->in.data[c->in.len] = '\0';
	}
}

/* The request this connection sends next into out. */
static int build_request(struct conn *c, struct buf *out, int *expect)
{
	char path[128];
	struct reqsig_headers h;
	struct reqsig_msg m = { "POST", path, "{}", 2 };
	int err;

	buf_reset(out);
	if (c->phase == PH_READ) {
		const char *id = strstr(c->path, "{id}");

		*expect = 200;
		if (!id)
			return buf_appendf(out,
					   "GET %s HTTP/1.1\r\nHost: %s\r\n"
					   "Accept: application/json\r\n\r\n",
					   c->path, c->host);
		/* one task after the other */
		c->next_task = (c->next_task + 1) % c->o->tasks;
		return buf_appendf(out,
				   "GET %.*s%s%s HTTP/1.1\r\nHost: %s\r\n"
				   "Accept: application/json\r\n\r\n",
				   (int)(id - c->path), c->path,
				   c->ids[c->next_task], id + 4, c->host);
	}
	*expect = 201;
	snprintf(path, sizeof(path), "/v1/tasks/%s/assignments",
		 c->ids[c->next_task]);
	err = reqsig_sign(&h, &c->key, &m, (int64_t)time(NULL));
	if (!err)
		err = buf_appendf(out,
				  "POST %s HTTP/1.1\r\nHost: %s\r\n"
				  "Content-Type: application/json\r\n"
				  "Content-Length: 2\r\n"
				  REQSIG_HDR_ADDRESS ": %s\r\n"
				  REQSIG_HDR_TIMESTAMP ": %s\r\n"
				  REQSIG_HDR_NONCE ": %s\r\n"
				  REQSIG_HDR_SIGNATURE ": %s\r\n\r\n{}",
				  path, c->host, h.address, h.timestamp,
				  h.nonce, h.signature);
	return err;
}

static void record(struct conn *c, double latency)
{
	uint32_t us = latency * 1e6 > 4e9 ? 4000000000u
					  : (uint32_t)(latency * 1e6);

	if (c->nlat == c->cap_lat) {
		size_t cap = c->cap_lat ? c->cap_lat * 2 : 4096;
		uint32_t *p;

		if (cap > SAMPLES_MAX)
			return; /* enough samples: keep counting only */
		p = realloc(c->lat_us, cap * sizeof(*p));
		if (!p)
			return;
		c->lat_us = p;
		c->cap_lat = cap;
	}
	c->lat_us[c->nlat++] = us;
}

static void *conn_run(void *arg)
{
	struct conn *c = arg;
	struct buf req = BUF_INIT(8192);
	int err = conn_open(c);

	while (!err && now_s() < c->t_end && (c->phase == PH_READ ||
					      c->left > 0)) {
		int status = 0, expect = 0, close_after = 0;
		const char *body = NULL;
		double t0, t1;

		err = build_request(c, &req, &expect);
		if (err)
			break;
		t0 = now_s();
		err = send_all(c->fd, req.data, req.len);
		if (!err)
			err = read_response(c, &status, &body, &close_after);
		t1 = now_s();
		if (err) {
			/* a dropped connection is an error; try once more */
			c->errors++;
			c->reconnects++;
			if (!c->first_error[0])
				snprintf(c->first_error,
					 sizeof(c->first_error), "%s",
					 fm_error_msg());
			err = conn_open(c);
			continue;
		}
		if (c->phase == PH_ASSIGN) {
			c->next_task = (c->next_task + 1) % c->o->tasks;
			c->left--;
		}
		if (t1 < c->t_measure || t1 > c->t_end)
			goto next;
		c->status_count[status >= 100 && status < 600 ? status / 100
							       : 0]++;
		if (status == expect) {
			c->ok++;
			record(c, t1 - t0);
		} else {
			c->errors++;
			if (!c->first_error[0])
				snprintf(c->first_error,
					 sizeof(c->first_error), "%d %.300s",
					 status, body);
		}
next:
		if (close_after)
			err = conn_open(c);
	}
	if (err) {
		c->fatal = 1;
		if (!c->first_error[0])
			snprintf(c->first_error, sizeof(c->first_error), "%s",
				 fm_error_msg());
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_cleanup(&req);
	buf_cleanup(&c->in);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* Runs one phase on all connections and returns its JSON figures. */
static json_t *run_phase(const struct opts *o, enum phase ph,
			 const char *path, char (*ids)[67],
			 struct chain_key *keys, int *errors_out)
{
	struct conn *cs = calloc((size_t)o->conns, sizeof(*cs));
	uint32_t *all = NULL;
	size_t n = 0;
	long ok = 0, errors = 0, reconnects = 0, fatal = 0, exhausted = 0;
	long classes[6] = { 0 };
	const char *first_error = NULL;
	double t0;
	json_t *out = NULL;
	int err = FM_OK;

	if (!cs) {
		fm_error_set(FM_ENOMEM, "out of memory");
		return NULL;
	}
	t0 = now_s();
	for (int i = 0; i < o->conns; i++) {
		struct conn *c = &cs[i];

		c->o = o;
		c->phase = ph;
		c->path = path;
		c->ids = ids;
		c->next_task = (int)((long)i * o->tasks / o->conns);
		c->fd = -1;
		buf_init(&c->in, RESP_MAX + 65536);
		c->t_measure = t0 + o->warmup;
		c->t_end = t0 + o->warmup + o->seconds;
		if (ph == PH_ASSIGN) {
			c->key = keys[i];
			c->next_task = (int)((long)i * o->tasks / o->conns);
			c->left = o->tasks;
		}
		err = url_addr(&c->addr, c->host, sizeof(c->host),
			       o->url);
		if (err)
			break;
	}
	for (int i = 0; !err && i < o->conns; i++)
		if (pthread_create(&cs[i].thread, NULL, conn_run, &cs[i])) {
			/* join what started; the figures would be wrong */
			for (int k = 0; k < i; k++)
				pthread_join(cs[k].thread, NULL);
			err = fm_error_set(FM_EINTERNAL,
					   "cannot start thread %d", i);
		}
	if (!err)
		for (int i = 0; i < o->conns; i++)
			pthread_join(cs[i].thread, NULL);
	if (err)
		goto done;
	for (int i = 0; i < o->conns; i++) {
		n += cs[i].nlat;
		ok += cs[i].ok;
		errors += cs[i].errors;
		reconnects += cs[i].reconnects;
		fatal += cs[i].fatal;
		exhausted += ph == PH_ASSIGN && cs[i].left == 0;
		for (int k = 0; k < 6; k++)
			classes[k] += cs[i].status_count[k];
		if (!first_error && cs[i].first_error[0])
			first_error = cs[i].first_error;
	}
	all = malloc((n ? n : 1) * sizeof(*all));
	if (!all) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	n = 0;
	for (int i = 0; i < o->conns; i++) {
		memcpy(all + n, cs[i].lat_us, cs[i].nlat * sizeof(*all));
		n += cs[i].nlat;
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	out = json_pack("{s:s, s:s, s:i, s:f, s:I, s:I, s:f, s:f, s:f, s:f, "
			"s:f, s:f, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
			"method", ph == PH_READ ? "GET" : "POST", "path",
			ph == PH_READ ? path : "/v1/tasks/{id}/assignments",
			"connections", o->conns, "duration_s", o->seconds,
			"requests", (json_int_t)ok, "errors",
			(json_int_t)errors, "req_per_s", (double)ok / o->seconds,
			"p50_ms", pct_ms(all, n, 50), "p90_ms",
			pct_ms(all, n, 90), "p99_ms", pct_ms(all, n, 99),
			"p999_ms", pct_ms(all, n, 99.9), "max_ms",
			n ? all[n - 1] / 1000.0 : 0.0, "reconnects",
			(json_int_t)reconnects, "status", "none",
			(json_int_t)classes[0], "2xx", (json_int_t)classes[2],
			"3xx", (json_int_t)classes[3], "4xx",
			(json_int_t)classes[4], "5xx", (json_int_t)classes[5],
			"1xx", (json_int_t)classes[1]);
	if (out && first_error)
		json_object_set_new(out, "first_error",
				    json_string(first_error));
	if (out && ph == PH_ASSIGN)
		json_object_set_new(out, "connections_out_of_tasks",
				    json_integer(exhausted));
	if (out && fatal)
		json_object_set_new(out, "connections_failed",
				    json_integer(fatal));
	*errors_out = (int)(errors + fatal);
done:
	for (int i = 0; i < o->conns; i++) {
		free(cs[i].lat_us);
		buf_cleanup(&cs[i].in);
	}
	free(cs);
	free(all);
	if (err) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---------------------------------------------------------- commands */

static int usage(void)
{
	fprintf(stderr,
		"usage: services_bench deploy\n"
		"       services_bench setup --taskd URL --escrow ADDR "
		"--assets REF --ids FILE\n"
		"                            [--tasks N] [--slots N]\n"
		"       services_bench load --ids FILE (--read URL PATH | "
		"--assign URL)\n"
		"                           [--conns C] [--seconds S] "
		"[--warmup S]\n");
	return 2;
}

/* Parses argv[2..]; 2 (usage) for an unknown, repeated or missing
 * option. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->tasks = 1000;
	o->slots = 256;
	o->conns = 64;
	o->seconds = 10;
	o->warmup = 1;
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return usage();
		i++;
		if (!strcmp(k, "--taskd"))
			o->taskd = v;
		else if (!strcmp(k, "--escrow"))
			o->escrow = v;
		else if (!strcmp(k, "--assets"))
			o->assets = v;
		else if (!strcmp(k, "--ids"))
			o->ids_file = v;
		else if (!strcmp(k, "--tasks"))
			o->tasks = atoi(v);
		else if (!strcmp(k, "--slots"))
			o->slots = atoi(v);
		else if (!strcmp(k, "--conns"))
			o->conns = atoi(v);
		else if (!strcmp(k, "--seconds"))
			o->seconds = atof(v);
		else if (!strcmp(k, "--warmup"))
			o->warmup = atof(v);
		else if (!strcmp(k, "--assign"))
			o->url = v;
		else if (!strcmp(k, "--read") && i + 1 < argc &&
			 argv[i + 1][0] == '/') {
			o->url = v;
			o->read_path = argv[++i];
		} else
			return usage();
	}
	if (!o->ids_file || o->tasks < 1 || o->tasks > TASKS_MAX ||
	    o->slots < 1 || o->slots > 100000 || o->conns < 1 ||
	    o->conns > CONNS_MAX || !(o->seconds > 0) || o->warmup < 0)
		return usage();
	return 0;
}

/* Funds and creates o->tasks open tasks; writes their ids, one a line,
 * to o->ids_file. */
static int cmd_setup(int argc, char **argv)
{
	struct opts o;
	struct chain_key creator;
	char(*ids)[67] = NULL;
	struct creator_job jobs[4];
	FILE *f = NULL;
	double t;
	int rc = parse_opts(&o, argc, argv), njobs = 4;

	if (!rc && (!o.taskd || !o.escrow || !o.assets))
		rc = usage();
	if (rc)
		return rc;
	ids = calloc((size_t)o.tasks, sizeof(*ids));
	if (!ids || chain_key_from_hex(&creator, KEY_CREATOR)) {
		fprintf(stderr, "services_bench: out of memory\n");
		rc = 1;
		goto done;
	}
	for (int i = 0; i < o.tasks; i++) {
		uint8_t b[32];

		randombytes_buf(b, sizeof(b));
		ids[i][0] = '0';
		ids[i][1] = 'x';
		hex_encode(ids[i] + 2, b, sizeof(b));
	}
	t = now_s();
	if (fund_tasks(ids, o.tasks, &creator, o.escrow, o.slots,
		       (uint64_t)time(NULL) + 3 * 86400)) {
		rc = fail("funding the tasks");
		goto done;
	}
	fprintf(stderr, "services_bench: funded %d tasks in %.1f s\n",
		o.tasks, now_s() - t);
	t = now_s();
	for (int i = 0; i < njobs; i++) {
		jobs[i] = (struct creator_job){ .o = &o, .creator = &creator,
						.ids = ids };
		jobs[i].from = (int)((long)i * o.tasks / njobs);
		jobs[i].to = (int)((long)(i + 1) * o.tasks / njobs);
		if (pthread_create(&jobs[i].thread, NULL, create_tasks,
				   &jobs[i])) {
			njobs = i;
			rc = 1;
		}
	}
	for (int i = 0; i < njobs; i++) {
		pthread_join(jobs[i].thread, NULL);
		if (jobs[i].failed) {
			fprintf(stderr, "services_bench: %s\n", jobs[i].error);
			rc = 1;
		}
	}
	if (rc)
		goto done;
	fprintf(stderr, "services_bench: created %d open tasks in %.1f s\n",
		o.tasks, now_s() - t);
	f = fopen(o.ids_file, "w");
	for (int i = 0; f && i < o.tasks; i++)
		fprintf(f, "%s\n", ids[i]);
	if (!f || fclose(f)) {
		fprintf(stderr, "services_bench: %s: %s\n", o.ids_file,
			strerror(errno));
		rc = 1;
	}
done:
	chain_key_wipe(&creator);
	free(ids);
	return rc;
}

/* Task ids from o->ids_file into *out (o->tasks is set to their count). */
static int read_ids(struct opts *o, char (**out)[67])
{
	FILE *f = fopen(o->ids_file, "r");
	char line[128];
	char(*ids)[67] = calloc(TASKS_MAX, sizeof(*ids));
	int n = 0, err = FM_OK;

	if (!f || !ids) {
		free(ids);
		if (f)
			fclose(f);
		return fm_error_set(FM_EIO, "%s: %s", o->ids_file,
				    f ? "out of memory" : strerror(errno));
	}
	while (!err && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == TASKS_MAX || strlen(line) != 66 ||
		    strncmp(line, "0x", 2) ||
		    strspn(line + 2, "0123456789abcdef") != 64)
			err = fm_error_set(FM_EINVAL,
					   "%s: line %d: not a task id",
					   o->ids_file, n + 1);
		else
			memcpy(ids[n++], line, 67);
	}
	fclose(f);
	if (!err && n == 0)
		err = fm_error_set(FM_EINVAL, "%s: no task ids", o->ids_file);
	if (err) {
		free(ids);
		return err;
	}
	o->tasks = n;
	*out = ids;
	return FM_OK;
}

/* One phase on the tasks of --ids; prints its JSON figures. Exit 1 when
 * any answer was not the expected one. */
static int cmd_load(int argc, char **argv)
{
	struct opts o;
	struct chain_key *keys = NULL;
	char(*ids)[67] = NULL;
	json_t *ph = NULL;
	int rc = parse_opts(&o, argc, argv), errors = 0, err = FM_OK;
	enum phase which;

	if (!rc && !o.url)
		rc = usage();
	if (rc)
		return rc;
	which = o.read_path ? PH_READ : PH_ASSIGN;
	keys = calloc((size_t)o.conns, sizeof(*keys));
	if (!keys)
		err = fm_error_set(FM_ENOMEM, "out of memory");
	if (!err)
		err = read_ids(&o, &ids);
	/* new contributors every run: none has taken a task yet */
	for (int i = 0; !err && which == PH_ASSIGN && i < o.conns; i++)
		err = chain_key_generate(&keys[i]);
	if (!err) {
		ph = run_phase(&o, which, o.read_path, ids, keys, &errors);
		if (!ph)
			err = FM_EINTERNAL;
	}
	if (err) {
		rc = fail("load");
		goto done;
	}
	json_object_set_new(ph, "tasks", json_integer(o.tasks));
	json_dumpf(ph, stdout, JSON_COMPACT);
	putchar('\n');
	rc = errors ? 1 : 0;
done:
	json_decref(ph);
	if (keys)
		for (int i = 0; i < o.conns; i++)
			chain_key_wipe(&keys[i]);
	free(keys);
	free(ids);
	return rc;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "services_bench: libsodium did not start\n");
		return 1;
	}
	if (argc == 2 && !strcmp(argv[1], "deploy"))
		return cmd_deploy();
	if (argc >= 2 && !strcmp(argv[1], "setup"))
		return cmd_setup(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return cmd_load(argc, argv);
	return usage();
}
