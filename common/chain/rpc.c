#include "chain/rpc.h"

#include "chain/abi.h"
#include "chain/keccak.h"
#include "core/err.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REASON_MAX 256
#define DATA_MAX (CHAIN_TX_DATA_MAX * 2)

struct chain_rpc {
	CURL *curl;
	struct curl_slist *headers;
	char *url;
	char where[160]; /* scheme://host:port, never the path (API keys) */
	struct chain_rpc_opts opts;
	long long next_id;
	struct buf body; /* the answer being read */
	char reason[REASON_MAX];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* URL without path and query: those often hold provider API keys. */
static void redact_url(char *out, size_t n, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;

	snprintf(out, n, "the RPC endpoint");
	if (!u)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
			snprintf(out, n, "%s://%s:%s", scheme, host, port);
		else
			snprintf(out, n, "%s://%s", scheme, host);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	/* returning less than given makes curl stop with a write error */
	if (buf_append(b, p, size * n))
		return 0;
	return size * n;
}

int chain_rpc_new(struct chain_rpc **out, const char *url,
		  const struct chain_rpc_opts *opts)
{
	static const struct chain_rpc_opts defaults = CHAIN_RPC_OPTS_INIT;
	struct chain_rpc *r = NULL;
	int err = FM_OK;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return fm_error_set(FM_EINVAL, "rpc url: \"%.80s\" is not an "
				    "http:// or https:// URL", url);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return fm_error_set(FM_EINTERNAL, "libcurl: %s",
				    curl_easy_strerror(curl_init_rc));
	r = calloc(1, sizeof(*r));
	if (!r)
		return fm_error_set(FM_ENOMEM, "out of memory");
	r->opts = opts ? *opts : defaults;
	r->next_id = 1;
	buf_init(&r->body, r->opts.max_response);
	redact_url(r->where, sizeof(r->where), url);
	r->url = strdup(url);
	r->curl = curl_easy_init();
	r->headers = curl_slist_append(NULL,
				       "Content-Type: application/json");
	if (!r->url || !r->curl || !r->headers) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->opts.timeout_ms);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 r->opts.connect_timeout_ms);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(r->curl, CURLOPT_ACCEPT_ENCODING, "");
done:
	if (err) {
		chain_rpc_free(r);
		return err;
	}
	*out = r;
	return FM_OK;
}

void chain_rpc_free(struct chain_rpc *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	curl_slist_free_all(r->headers);
	free(r->url);
	buf_cleanup(&r->body);
	free(r);
}

const char *chain_rpc_revert_reason(const struct chain_rpc *r)
{
	return r->reason;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int is_transient_status(long status)
{
	return status == 429 || status == 502 || status == 503 ||
	       status == 504;
}

/* One HTTP exchange with retries on transport failures; the answer is in
 * r->body, *status the HTTP status. */
static int post(struct chain_rpc *r, const char *method, const char *req,
		long *status)
{
	long delay = r->opts.retry_delay_ms;
	CURLcode rc = CURLE_OK;
	int attempt;

	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
	for (attempt = 0;; attempt++) {
		buf_init(&r->body, r->opts.max_response);
		*status = 0;
		rc = curl_easy_perform(r->curl);
		if (rc == CURLE_WRITE_ERROR) /* on_body refused: no retry */
			return fm_error_code() == FM_ENOMEM ? FM_ENOMEM :
				fm_error_set(FM_ETOOLARGE,
					     "%s: answer from %s exceeds %zu "
					     "bytes", method, r->where,
					     r->opts.max_response);
		if (rc == CURLE_OK)
			curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE,
					  status);
		if (rc == CURLE_OK && !is_transient_status(*status))
			return FM_OK;
		if (attempt >= r->opts.retries)
			break;
		buf_cleanup(&r->body);
		sleep_ms(delay);
		delay *= 2;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return fm_error_set(FM_ETIMEOUT,
				    "%s: %s did not answer within %ld ms "
				    "(%d attempts)", method, r->where,
				    r->opts.timeout_ms, attempt + 1);
	if (rc != CURLE_OK)
		return fm_error_set(FM_EUNAVAIL, "%s: %s: %s (%d attempts)",
				    method, r->where, curl_easy_strerror(rc),
				    attempt + 1);
	return fm_error_set(FM_EUNAVAIL, "%s: %s answered HTTP %ld (%d "
			    "attempts)", method, r->where, *status,
			    attempt + 1);
}

static int contains(const char *s, const char *part)
{
	return strcasestr(s, part) != NULL;
}

/* Turns a JSON-RPC error object into the error code and message. */
static int node_error(struct chain_rpc *r, const char *method,
		      const json_t *e)
{
	json_t *jcode = json_object_get(e, "code");
	json_t *jmsg = json_object_get(e, "message");
	json_t *jdata = json_object_get(e, "data");
	const char *msg = json_is_string(jmsg) ? json_string_value(jmsg) :
						 "(no message)";
	long long code = json_is_integer(jcode) ? json_integer_value(jcode) :
						  0;
	const char *hex = json_is_string(jdata) ? json_string_value(jdata) :
						  NULL;

	if (contains(msg, "revert") || code == 3) {
		uint8_t *data = NULL;
		size_t n = 0;

		/* the data carries the reason; messages vary by node */
		if (hex && hex[0] == '0' && hex[1] == 'x') {
			n = (strlen(hex) - 2) / 2;
			if (n <= DATA_MAX) {
				data = malloc(n ? n : 1);
				if (data && hex_decode(data, n, hex))
					n = 0;
			}
		}
		if (data && n)
			abi_revert_reason(r->reason, sizeof(r->reason), data,
					  n);
		else if (strncmp(msg, "execution reverted: ", 20) == 0)
			snprintf(r->reason, sizeof(r->reason), "%s", msg + 20);
		else
			snprintf(r->reason, sizeof(r->reason),
				 "no reason given");
		free(data);
		return fm_error_set(FM_ECONFLICT,
				    "%s: execution reverted: %s", method,
				    r->reason);
	}
	if (contains(msg, "nonce too low") || contains(msg, "underpriced") ||
	    contains(msg, "already known") ||
	    contains(msg, "known transaction"))
		return fm_error_set(FM_ECONFLICT, "%s: %s", method, msg);
	if (code == -32601)
		return fm_error_set(FM_EUNPROCESSABLE, "%s: %s does not "
				    "support this method (%s)", method,
				    r->where, msg);
	return fm_error_set(FM_EUNPROCESSABLE, "%s: %s (code %lld)", method,
			    msg, code);
}

int chain_rpc_call(struct chain_rpc *r, json_t **result, const char *method,
		   json_t *params)
{
	json_t *req = NULL, *ans = NULL, *jid, *res, *e;
	json_error_t je;
	char *text = NULL;
	long long id = r->next_id++;
	long status = 0;
	int err;

	r->reason[0] = '\0';
	req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id",
			(json_int_t)id, "method", method, "params",
			params ? params : json_array());
	params = NULL;
	if (!req || !(text = json_dumps(req, JSON_COMPACT))) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = post(r, method, text, &status);
	if (err)
		goto done;
	ans = json_loadb(r->body.data ? r->body.data : "", r->body.len,
			 JSON_REJECT_DUPLICATES, &je);
	if (!ans) {
		err = fm_error_set(FM_EUNAVAIL,
				   "%s: %s answered HTTP %ld with invalid "
				   "JSON (%s at byte %d)", method, r->where,
				   status, je.text, je.position);
		goto done;
	}
	jid = json_object_get(ans, "id");
	if (!json_is_object(ans) || !json_is_integer(jid) ||
	    json_integer_value(jid) != id) {
		/* a batch, a notification or someone else's answer */
		err = fm_error_set(FM_EUNAVAIL,
				   "%s: %s answered with a wrong or missing "
				   "id (expected %lld)", method, r->where, id);
		goto done;
	}
	e = json_object_get(ans, "error");
	if (e && !json_is_null(e)) {
		err = json_is_object(e) ? node_error(r, method, e) :
			fm_error_set(FM_EUNAVAIL, "%s: %s answered a "
				     "malformed error", method, r->where);
		goto done;
	}
	res = json_object_get(ans, "result");
	if (!res) {
		err = fm_error_set(FM_EUNAVAIL, "%s: %s answered neither a "
				   "result nor an error", method, r->where);
		goto done;
	}
	*result = json_incref(res);
done:
	buf_cleanup(&r->body);
	free(text);
	json_decref(req);
	json_decref(ans);
	json_decref(params);
	return err;
}

/* ---- typed answers ---- */

static int want_quantity(struct chain_u256 *out, const json_t *v,
			 const char *what)
{
	if (!json_is_string(v))
		return fm_error_set(FM_EUNAVAIL, "%s: expected a hex quantity "
				    "string in the answer", what);
	if (chain_u256_from_quantity(out, json_string_value(v)))
		return fm_error_set(FM_EUNAVAIL, "%s: \"%.40s\" is not a hex "
				    "quantity", what, json_string_value(v));
	return FM_OK;
}

static int want_u64(uint64_t *out, const json_t *v, const char *what)
{
	struct chain_u256 q;
	int err = want_quantity(&q, v, what);

	if (err)
		return err;
	if (chain_u256_to_u64(out, &q))
		return fm_error_set(FM_EUNAVAIL, "%s: value does not fit in "
				    "64 bits", what);
	return FM_OK;
}

/* Fixed-size hex data (an address, a hash). */
static int want_fixed(uint8_t *out, size_t n, const json_t *v,
		      const char *what)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	if (!s || strncmp(s, "0x", 2) != 0 || strlen(s) != 2 + 2 * n ||
	    hex_decode(out, n, s))
		return fm_error_set(FM_EUNAVAIL, "%s: expected 0x and %zu hex "
				    "digits in the answer", what, 2 * n);
	return FM_OK;
}

/* Variable hex data appended to out (bounded by out's cap). */
static int want_data(struct buf *out, const json_t *v, const char *what)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t n;
	int err;

	if (!s || strncmp(s, "0x", 2) != 0 || strlen(s) % 2)
		return fm_error_set(FM_EUNAVAIL, "%s: expected 0x-prefixed hex "
				    "data in the answer", what);
	n = (strlen(s) - 2) / 2;
	err = buf_reserve(out, n);
	if (err)
		return fm_error_prefix("%s", what);
	if (hex_decode((uint8_t *)out->data + out->len, n, s))
		return fm_error_set(FM_EUNAVAIL, "%s: invalid hex data in the "
				    "answer", what);
	out->len += n;
	out->data[out->len] = '\0';
	return FM_OK;
}

static json_t *hex_json(const void *p, size_t n)
{
	char *s = malloc(2 * n + 3);
	json_t *j;

	if (!s)
		return NULL;
	s[0] = '0';
	s[1] = 'x';
	hex_encode(s + 2, p, n);
	j = json_string(s);
	free(s);
	return j;
}

static json_t *u64_json(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%llx", (unsigned long long)v);
	return json_string(s);
}

static json_t *u256_json(const struct chain_u256 *v)
{
	char s[67];

	chain_u256_to_hex(s, v);
	return json_string(s);
}

/* Calls method and reads a quantity result. */
static int call_u64(struct chain_rpc *r, uint64_t *out, const char *method,
		    json_t *params)
{
	json_t *res = NULL;
	int err = chain_rpc_call(r, &res, method, params);

	if (err)
		goto done;
	err = want_u64(out, res, method);
done:
	json_decref(res);
	return err;
}

int chain_rpc_chain_id(struct chain_rpc *r, uint64_t *out)
{
	return call_u64(r, out, "eth_chainId", NULL);
}

int chain_rpc_block_number(struct chain_rpc *r, uint64_t *out)
{
	return call_u64(r, out, "eth_blockNumber", NULL);
}

int chain_rpc_nonce(struct chain_rpc *r, uint64_t *out,
		    const uint8_t addr[CHAIN_ADDR_LEN], const char *block)
{
	return call_u64(r, out, "eth_getTransactionCount",
			json_pack("[o, s]", hex_json(addr, CHAIN_ADDR_LEN),
				  block));
}

int chain_rpc_balance(struct chain_rpc *r, struct chain_u256 *out,
		      const uint8_t addr[CHAIN_ADDR_LEN])
{
	json_t *res = NULL;
	int err = chain_rpc_call(r, &res, "eth_getBalance",
				 json_pack("[o, s]",
					   hex_json(addr, CHAIN_ADDR_LEN),
					   "latest"));

	if (err)
		goto done;
	err = want_quantity(out, res, "eth_getBalance");
done:
	json_decref(res);
	return err;
}

int chain_rpc_code(struct chain_rpc *r, struct buf *out,
		   const uint8_t addr[CHAIN_ADDR_LEN])
{
	json_t *res = NULL;
	int err = chain_rpc_call(r, &res, "eth_getCode",
				 json_pack("[o, s]",
					   hex_json(addr, CHAIN_ADDR_LEN),
					   "latest"));

	if (err)
		goto done;
	err = want_data(out, res, "eth_getCode");
done:
	json_decref(res);
	return err;
}

/* The call object of eth_call and eth_estimateGas. */
static json_t *call_object(const uint8_t *from, const uint8_t *to,
			   const struct chain_u256 *value, const void *data,
			   size_t n)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (from)
		json_object_set_new(o, "from", hex_json(from, CHAIN_ADDR_LEN));
	if (to)
		json_object_set_new(o, "to", hex_json(to, CHAIN_ADDR_LEN));
	if (value && !chain_u256_is_zero(value))
		json_object_set_new(o, "value", u256_json(value));
	/* "data" rather than "input": every node version accepts it */
	json_object_set_new(o, "data", hex_json(data, n));
	return o;
}

static int eth_call_at(struct chain_rpc *r, struct buf *out,
		       const uint8_t *from, const uint8_t *to,
		       const struct chain_u256 *value, const void *data,
		       size_t n, json_t *block)
{
	json_t *res = NULL;
	int err = chain_rpc_call(r, &res, "eth_call",
				 json_pack("[o, o]",
					   call_object(from, to, value, data,
						       n),
					   block));

	if (err)
		goto done;
	err = want_data(out, res, "eth_call");
done:
	json_decref(res);
	return err;
}

int chain_rpc_eth_call(struct chain_rpc *r, struct buf *out,
		       const uint8_t *from, const uint8_t to[CHAIN_ADDR_LEN],
		       const void *data, size_t n)
{
	return eth_call_at(r, out, from, to, NULL, data, n,
			   json_string("latest"));
}

int chain_rpc_estimate_gas(struct chain_rpc *r, uint64_t *out,
			   const uint8_t from[CHAIN_ADDR_LEN],
			   const struct chain_tx *tx)
{
	return call_u64(r, out, "eth_estimateGas",
			json_pack("[o]", call_object(from,
						     tx->has_to ? tx->to : NULL,
						     &tx->value, tx->data,
						     tx->data_len)));
}

int chain_rpc_fees(struct chain_rpc *r, struct chain_fees *out)
{
	json_t *res = NULL, *base;
	struct chain_fees f;
	uint64_t prio;
	int err;

	err = chain_rpc_call(r, &res, "eth_feeHistory",
			     json_pack("[s, s, []]", "0x1", "latest"));
	if (err)
		goto done;
	/* baseFeePerGas has one more entry than blocks: the next block */
	base = json_object_get(res, "baseFeePerGas");
	if (!json_is_array(base) || json_array_size(base) == 0) {
		err = fm_error_set(FM_EUNAVAIL, "eth_feeHistory: no "
				   "baseFeePerGas in the answer");
		goto done;
	}
	err = want_quantity(&f.base_fee,
			    json_array_get(base, json_array_size(base) - 1),
			    "eth_feeHistory baseFeePerGas");
	if (err)
		goto done;
	err = call_u64(r, &prio, "eth_maxPriorityFeePerGas", NULL);
	if (err)
		goto done;
	f.priority_fee = chain_u256_from_u64(prio);
	/* twice the base fee survives six full blocks of increases */
	if (chain_u256_mul_u64(&f.max_fee, &f.base_fee, 2) ||
	    chain_u256_add(&f.max_fee, &f.max_fee, &f.priority_fee)) {
		err = fm_error_set(FM_EUNAVAIL, "eth_feeHistory: base fee out "
				   "of range");
		goto done;
	}
	*out = f;
done:
	json_decref(res);
	return err;
}

/* Whether the node knows a transaction by hash (pending or mined). */
static int tx_known(struct chain_rpc *r, const uint8_t hash[32])
{
	json_t *res = NULL;
	int known = 0;

	if (!chain_rpc_call(r, &res, "eth_getTransactionByHash",
			    json_pack("[o]", hex_json(hash, 32))))
		known = json_is_object(res);
	json_decref(res);
	return known;
}

/* The node's answer to eth_sendRawTransaction must be the hash h. */
static int check_sent_hash(const json_t *res, const uint8_t h[32])
{
	uint8_t got[32];
	int err = want_fixed(got, 32, res, "eth_sendRawTransaction");

	if (err)
		return err;
	if (memcmp(got, h, 32) != 0)
		return fm_error_set(FM_EUNAVAIL, "eth_sendRawTransaction: the "
				    "node answered another hash than the "
				    "transaction's");
	return FM_OK;
}

/* After a refusal as already known: FM_OK when the node has transaction
 * h (a re-broadcast after a crash: the same bytes are fine), otherwise
 * the refusal as it was. */
static int known_or_conflict(struct chain_rpc *r, const uint8_t h[32])
{
	char msg[FM_ERR_MSG_MAX];

	snprintf(msg, sizeof(msg), "%s", fm_error_msg());
	if (!tx_known(r, h))
		return fm_error_set(FM_ECONFLICT, "%s", msg);
	fm_error_clear();
	return FM_OK;
}

int chain_rpc_send_raw(struct chain_rpc *r, uint8_t hash_out[32],
		       const uint8_t *raw, size_t n)
{
	json_t *res = NULL;
	uint8_t h[32];
	int err;

	chain_keccak256(h, raw, n);
	err = chain_rpc_call(r, &res, "eth_sendRawTransaction",
			     json_pack("[o]", hex_json(raw, n)));
	if (err == FM_ECONFLICT)
		err = known_or_conflict(r, h);
	else if (err == FM_OK)
		err = check_sent_hash(res, h);
	if (err)
		goto done;
	memcpy(hash_out, h, 32);
done:
	json_decref(res);
	return err;
}

void chain_logs_free(struct chain_log *logs, size_t n)
{
	if (!logs)
		return;
	for (size_t i = 0; i < n; i++)
		free(logs[i].data);
	free(logs);
}

void chain_receipt_cleanup(struct chain_receipt *rc)
{
	chain_logs_free(rc->logs, rc->nlogs);
	rc->logs = NULL;
	rc->nlogs = 0;
}

static int parse_log(struct chain_log *out, const json_t *j, size_t i)
{
	struct buf data = BUF_INIT(DATA_MAX);
	json_t *topics = json_object_get(j, "topics");
	json_t *removed = json_object_get(j, "removed");
	char what[48];
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "logs[%zu]", i);
	if (!json_is_object(j) || !json_is_array(topics) ||
	    json_array_size(topics) > CHAIN_LOG_TOPICS_MAX)
		return fm_error_set(FM_EUNAVAIL, "%s: not a log with at most "
				    "4 topics", what);
	err = want_fixed(out->address, CHAIN_ADDR_LEN,
			 json_object_get(j, "address"), what);
	if (err)
		goto done;
	for (size_t t = 0; t < json_array_size(topics); t++) {
		err = want_fixed(out->topics[t], 32,
				 json_array_get(topics, t), what);
		if (err)
			goto done;
	}
	out->ntopics = json_array_size(topics);
	err = want_data(&data, json_object_get(j, "data"), what);
	if (err)
		goto done;
	err = want_u64(&out->block_number, json_object_get(j, "blockNumber"),
		       what);
	if (err)
		goto done;
	err = want_u64(&out->log_index, json_object_get(j, "logIndex"), what);
	if (err)
		goto done;
	err = want_fixed(out->tx_hash, 32,
			 json_object_get(j, "transactionHash"), what);
	if (err)
		goto done;
	out->removed = json_is_true(removed);
	out->data = (uint8_t *)buf_detach(&data, &out->data_len);
done:
	buf_cleanup(&data);
	return err;
}

static int parse_logs(struct chain_log **out, size_t *n, const json_t *arr,
		      size_t max)
{
	struct chain_log *logs;
	size_t count;
	int err = FM_OK;

	if (!json_is_array(arr))
		return fm_error_set(FM_EUNAVAIL, "logs: expected an array in "
				    "the answer");
	count = json_array_size(arr);
	if (count > max)
		return fm_error_set(FM_ETOOLARGE, "logs: %zu in the answer, "
				    "limit %zu", count, max);
	logs = calloc(count ? count : 1, sizeof(*logs));
	if (!logs)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		err = parse_log(&logs[i], json_array_get(arr, i), i);
		if (err) {
			chain_logs_free(logs, i); /* what was parsed */
			return err;
		}
	}
	*out = logs;
	*n = count;
	return FM_OK;
}

/* A receipt object (for transaction hash) into rc; its logs last. */
static int receipt_fields(struct chain_receipt *rc, const json_t *res,
			  const uint8_t hash[32])
{
	json_t *ca = json_object_get(res, "contractAddress");
	uint64_t status;
	int err;

	err = want_fixed(rc->tx_hash, 32,
			 json_object_get(res, "transactionHash"),
			 "receipt transactionHash");
	if (err)
		return err;
	if (memcmp(rc->tx_hash, hash, 32) != 0)
		return fm_error_set(FM_EUNAVAIL, "eth_getTransactionReceipt: "
				    "answer is for another transaction");
	err = want_u64(&status, json_object_get(res, "status"),
		       "receipt status");
	if (err)
		return err;
	err = want_u64(&rc->block_number, json_object_get(res, "blockNumber"),
		       "receipt blockNumber");
	if (err)
		return err;
	err = want_u64(&rc->gas_used, json_object_get(res, "gasUsed"),
		       "receipt gasUsed");
	if (err)
		return err;
	err = want_quantity(&rc->effective_gas_price,
			    json_object_get(res, "effectiveGasPrice"),
			    "receipt effectiveGasPrice");
	if (err)
		return err;
	if (ca && !json_is_null(ca)) {
		err = want_fixed(rc->contract_address, CHAIN_ADDR_LEN, ca,
				 "receipt contractAddress");
		if (err)
			return err;
		rc->has_contract = 1;
	}
	rc->status = status == 1;
	return parse_logs(&rc->logs, &rc->nlogs, json_object_get(res, "logs"),
			  100000);
}

int chain_rpc_receipt(struct chain_rpc *r, struct chain_receipt *out,
		      const uint8_t hash[32])
{
	json_t *res = NULL;
	struct chain_receipt rc;
	char hex[65];
	int err;

	memset(&rc, 0, sizeof(rc));
	err = chain_rpc_call(r, &res, "eth_getTransactionReceipt",
			     json_pack("[o]", hex_json(hash, 32)));
	if (err)
		goto done;
	if (json_is_null(res)) {
		hex_encode(hex, hash, 32);
		err = fm_error_set(FM_ENOTFOUND, "transaction 0x%s: no "
				   "receipt yet (pending or unknown)", hex);
		goto done;
	}
	if (!json_is_object(res)) {
		err = fm_error_set(FM_EUNAVAIL, "eth_getTransactionReceipt: "
				   "expected an object in the answer");
		goto done;
	}
	err = receipt_fields(&rc, res, hash);
	if (err)
		goto done;
	*out = rc;
done:
	json_decref(res);
	return err;
}

int chain_rpc_wait_receipt(struct chain_rpc *r, struct chain_receipt *out,
			   const uint8_t hash[32], long timeout_ms,
			   long poll_ms)
{
	struct timespec t0, t;
	char hex[65];
	int err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		err = chain_rpc_receipt(r, out, hash);
		if (err != FM_ENOTFOUND)
			return err;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
			break;
		sleep_ms(poll_ms);
	}
	hex_encode(hex, hash, 32);
	return fm_error_set(FM_ETIMEOUT, "transaction 0x%s: not mined within "
			    "%ld ms", hex, timeout_ms);
}

int chain_rpc_get_logs(struct chain_rpc *r, struct chain_log **out,
		       size_t *n, const struct chain_log_filter *f)
{
	json_t *filter = json_object(), *topics = json_array(), *res = NULL;
	int err;

	if (!filter || !topics) {
		json_decref(filter);
		json_decref(topics);
		return fm_error_set(FM_ENOMEM, "out of memory");
	}
	if (f->address)
		json_object_set_new(filter, "address",
				    hex_json(f->address, CHAIN_ADDR_LEN));
	json_object_set_new(filter, "fromBlock", u64_json(f->from_block));
	json_object_set_new(filter, "toBlock",
			    f->to_block == UINT64_MAX ?
				    json_string("latest") :
				    u64_json(f->to_block));
	for (size_t i = 0; i < f->ntopics && i < CHAIN_LOG_TOPICS_MAX; i++)
		json_array_append_new(topics, f->topics[i] ?
					      hex_json(f->topics[i], 32) :
					      json_null());
	json_object_set_new(filter, "topics", topics);
	err = chain_rpc_call(r, &res, "eth_getLogs",
			     json_pack("[o]", filter));
	if (err)
		goto done;
	err = parse_logs(out, n, res, f->max_logs ? f->max_logs : 10000);
done:
	json_decref(res);
	return err;
}

int chain_rpc_prepare_tx(struct chain_rpc *r, struct chain_tx *tx,
			 const uint8_t from[CHAIN_ADDR_LEN])
{
	struct chain_fees fees;
	uint64_t gas;
	int err;

	err = chain_rpc_chain_id(r, &tx->chain_id);
	if (err)
		return err;
	err = chain_rpc_nonce(r, &tx->nonce, from, "pending");
	if (err)
		return err;
	err = chain_rpc_fees(r, &fees);
	if (err)
		return err;
	tx->max_fee = fees.max_fee;
	tx->max_priority_fee = fees.priority_fee;
	if (tx->gas_limit == 0) {
		err = chain_rpc_estimate_gas(r, &gas, from, tx);
		if (err)
			return err;
		tx->gas_limit = gas + gas / 4;
	}
	return FM_OK;
}

/* After a mined revert, replays the call on the parent block's state to
 * learn the reason. */
static void replay_reason(struct chain_rpc *r, const struct chain_tx *tx,
			  const uint8_t from[CHAIN_ADDR_LEN], uint64_t block,
			  char *out, size_t n)
{
	struct buf ret = BUF_INIT(DATA_MAX);
	int err;

	err = eth_call_at(r, &ret, from, tx->has_to ? tx->to : NULL,
			  &tx->value, tx->data, tx->data_len,
			  u64_json(block ? block - 1 : 0));
	if (err == FM_ECONFLICT)
		snprintf(out, n, "%s", r->reason);
	else
		snprintf(out, n, "out of gas or no reason given");
	buf_cleanup(&ret);
}

/* Prepares, signs and sends tx; waits for its receipt. */
static int sign_and_send(struct chain_rpc *r, struct chain_receipt *out,
			 uint8_t hash[32], struct chain_tx *tx,
			 const struct chain_key *key, long timeout_ms)
{
	struct buf raw = BUF_INIT(CHAIN_TX_DATA_MAX + 4096);
	int err;

	err = chain_rpc_prepare_tx(r, tx, key->addr);
	if (err)
		goto done;
	err = chain_tx_sign(&raw, hash, tx, key->priv);
	if (err)
		goto done;
	err = chain_rpc_send_raw(r, hash, (uint8_t *)raw.data, raw.len);
	if (err)
		goto done;
	err = chain_rpc_wait_receipt(r, out, hash, timeout_ms, 100);
done:
	buf_cleanup(&raw);
	return err;
}

int chain_rpc_send_tx(struct chain_rpc *r, struct chain_receipt *out,
		      struct chain_tx *tx, const struct chain_key *key,
		      long timeout_ms)
{
	uint8_t hash[32];
	char hex[65], reason[REASON_MAX];
	int err;

	err = sign_and_send(r, out, hash, tx, key, timeout_ms);
	if (err || out->status)
		return err;
	replay_reason(r, tx, key->addr, out->block_number, reason,
		      sizeof(reason));
	hex_encode(hex, hash, 32);
	return fm_error_set(FM_ECONFLICT, "transaction 0x%s reverted in "
			    "block %llu: %s", hex,
			    (unsigned long long)out->block_number, reason);
}
