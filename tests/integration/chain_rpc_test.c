/* The JSON-RPC client: against the stack's anvil (queries, a signed
 * transfer that cast sees, re-broadcasts, nonce errors), and against a
 * misbehaving server of this test (malformed, huge, wrong-id, slow,
 * failing answers) that must give errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/escrow.h"
#include "chain_testutil.h"
#include "http_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- a server that answers badly, one connection per request ---- */

enum mode {
	M_BAD_JSON, M_HUGE, M_WRONG_ID, M_NO_RESULT, M_HTML_500, M_503_ONCE,
	M_SLOW, M_BAD_QUANTITY, M_REVERT, M_BATCH, M_CLOSE, M_OTHER_RECEIPT,
	M_BAD_LOGS,
};

static struct {
	int fd;
	uint16_t port;
	pthread_t thread;
	volatile int stop;
	volatile enum mode mode;
	volatile int requests;
} srv;

static void respond(int fd, int status, const char *body, size_t n)
{
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, n);

	/* a client that hung up is the test's failure to see, not ours */
	if (http_test_send(fd, head, (size_t)h) == 0)
		http_test_send(fd, body, n);
}

static void respond_str(int fd, int status, const char *body)
{
	respond(fd, status, body, strlen(body));
}

/* Reads the request; returns its JSON-RPC id (0 if none found). */
static long read_request(int fd)
{
	char req[65536];
	size_t got = 0;
	char *end, *id;
	long clen = 0;

	for (;;) {
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);

		if (r <= 0)
			return 0;
		got += (size_t)r;
		req[got] = '\0';
		end = strstr(req, "\r\n\r\n");
		if (end) {
			char *cl = strcasestr(req, "Content-Length:");

			clen = cl ? strtol(cl + 15, NULL, 10) : 0;
			if (got >= (size_t)(end + 4 - req) + (size_t)clen)
				break;
		}
		if (got == sizeof(req) - 1)
			return 0;
	}
	id = strstr(end, "\"id\":");
	return id ? strtol(id + 5, NULL, 10) : 0;
}

static void serve_one(int fd)
{
	char body[1024];
	long id = read_request(fd);
	int n;

	srv.requests++;
	switch (srv.mode) {
	case M_BAD_JSON:
		respond_str(fd, 200, "{\"jsonrpc\":\"2.0\",\"id\":");
		break;
	case M_HUGE: {
		size_t size = 4u << 20;
		char *big = malloc(size);

		assert_non_null(big);
		memset(big, ' ', size);
		memcpy(big, "{\"a\":\"", 6);
		respond(fd, 200, big, size);
		free(big);
		break;
	}
	case M_WRONG_ID:
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":\"0x1\"}",
			     id + 1);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_NO_RESULT:
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld}", id);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_HTML_500:
		respond_str(fd, 500, "<html>oops</html>");
		break;
	case M_503_ONCE:
		if (srv.requests == 1) {
			respond_str(fd, 503, "busy");
			break;
		}
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":\"0x7a69\"}",
			     id);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_SLOW:
		for (int i = 0; i < 30 && !srv.stop; i++)
			usleep(10000);
		respond_str(fd, 200, "{}");
		break;
	case M_BAD_QUANTITY:
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":\"0xzz\"}",
			     id);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_REVERT:
		/* Error("already paid"), as geth and anvil report it */
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"error\":{\"code\":3,"
			     "\"message\":\"execution reverted\",\"data\":\"0x08c379a0"
			     "0000000000000000000000000000000000000000000000000000000000000020"
			     "000000000000000000000000000000000000000000000000000000000000000c"
			     "616c726561647920706169640000000000000000000000000000000000000000"
			     "\"}}", id);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_BATCH:
		respond_str(fd, 200,
			    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]");
		break;
	case M_CLOSE:
		break;
	case M_OTHER_RECEIPT:
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{"
			     "\"transactionHash\":\"0x%064d\",\"status\":\"0x1\","
			     "\"blockNumber\":\"0x1\",\"gasUsed\":\"0x1\","
			     "\"effectiveGasPrice\":\"0x1\",\"logs\":[]}}", id, 7);
		respond(fd, 200, body, (size_t)n);
		break;
	case M_BAD_LOGS:
		n = snprintf(body, sizeof(body),
			     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":[{"
			     "\"address\":\"0x%040d\",\"topics\":[\"0x1\"],"
			     "\"data\":\"0x\",\"blockNumber\":\"0x1\","
			     "\"logIndex\":\"0x0\",\"transactionHash\":\"0x%064d\"}]}",
			     id, 0, 0);
		respond(fd, 200, body, (size_t)n);
		break;
	}
	close(fd);
}

static void *serve(void *arg)
{
	(void)arg;
	while (!srv.stop) {
		int c = accept(srv.fd, NULL, NULL);

		if (c >= 0)
			serve_one(c);
	}
	return NULL;
}

static int bad_server_up(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct timeval tv = { 0, 100000 };
	int one = 1;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* the chain tests' port in the private range */
	sa.sin_port = htons((uint16_t)http_test_port(0));
	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(srv.fd >= 0);
	setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* accept wakes up to see the stop flag */
	setsockopt(srv.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("cannot bind 127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(listen(srv.fd, 16), 0);
	getsockname(srv.fd, (struct sockaddr *)&sa, &len);
	srv.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, serve, NULL), 0);
	return 0;
}

static int bad_server_down(void **state)
{
	(void)state;
	srv.stop = 1;
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	return 0;
}

static struct chain_rpc *bad_rpc(enum mode m, long timeout_ms, int retries)
{
	struct chain_rpc_opts o = CHAIN_RPC_OPTS_INIT;
	struct chain_rpc *r = NULL;
	char url[64];

	o.timeout_ms = timeout_ms;
	o.retries = retries;
	o.retry_delay_ms = 10;
	o.max_response = 1u << 20;
	srv.mode = m;
	srv.requests = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/secret-api-key",
		 srv.port);
	assert_int_equal(chain_rpc_new(&r, url, &o), FM_OK);
	return r;
}

static void expect_bad(enum mode m, int code, const char *part)
{
	struct chain_rpc *r = bad_rpc(m, 2000, 0);
	uint64_t v = 12345;

	assert_int_equal(chain_rpc_chain_id(r, &v), code);
	assert_msg_contains(part);
	/* the URL's path (often an API key) never shows in messages */
	assert_null(strstr(fm_error_msg(), "secret-api-key"));
	assert_int_equal(v, 12345);
	chain_rpc_free(r);
}

static void test_rpc__bad_answers_are_errors(void **state)
{
	(void)state;
	expect_bad(M_BAD_JSON, FM_EUNAVAIL, "invalid JSON");
	expect_bad(M_HUGE, FM_ETOOLARGE, "exceeds 1048576 bytes");
	expect_bad(M_WRONG_ID, FM_EUNAVAIL, "wrong or missing id");
	expect_bad(M_BATCH, FM_EUNAVAIL, "wrong or missing id");
	expect_bad(M_NO_RESULT, FM_EUNAVAIL, "neither a result nor an error");
	expect_bad(M_HTML_500, FM_EUNAVAIL, "HTTP 500 with invalid JSON");
	expect_bad(M_BAD_QUANTITY, FM_EUNAVAIL, "\"0xzz\" is not a hex quantity");
	expect_bad(M_REVERT, FM_ECONFLICT, "execution reverted: already paid");
}

static void test_rpc__transport_errors_are_retried(void **state)
{
	struct chain_rpc *r;
	uint64_t v = 0;

	(void)state;
	/* a 503 is retried, and the second answer counts */
	r = bad_rpc(M_503_ONCE, 2000, 2);
	assert_int_equal(chain_rpc_chain_id(r, &v), FM_OK);
	assert_int_equal(v, 31337);
	assert_int_equal(srv.requests, 2);
	chain_rpc_free(r);
	/* a dropped connection is retried, then reported */
	r = bad_rpc(M_CLOSE, 2000, 2);
	assert_int_equal(chain_rpc_chain_id(r, &v), FM_EUNAVAIL);
	assert_int_equal(srv.requests, 3);
	assert_msg_contains("3 attempts");
	chain_rpc_free(r);
	/* a slow node times out */
	r = bad_rpc(M_SLOW, 100, 0);
	assert_int_equal(chain_rpc_chain_id(r, &v), FM_ETIMEOUT);
	assert_msg_contains("did not answer within 100 ms");
	chain_rpc_free(r);
	/* an answer that is an error is never retried */
	r = bad_rpc(M_REVERT, 2000, 3);
	assert_int_equal(chain_rpc_chain_id(r, &v), FM_ECONFLICT);
	assert_int_equal(srv.requests, 1);
	assert_string_equal(chain_rpc_revert_reason(r), "already paid");
	chain_rpc_free(r);
}

static void test_rpc__bad_receipts_and_logs(void **state)
{
	struct chain_rpc *r;
	struct chain_receipt rc;
	struct chain_log *logs = NULL;
	struct chain_log_filter f;
	uint8_t hash[32] = { 1 };
	size_t n = 0;

	(void)state;
	r = bad_rpc(M_OTHER_RECEIPT, 2000, 0);
	assert_int_equal(chain_rpc_receipt(r, &rc, hash), FM_EUNAVAIL);
	assert_msg_contains("another transaction");
	chain_rpc_free(r);
	r = bad_rpc(M_BAD_LOGS, 2000, 0);
	memset(&f, 0, sizeof(f));
	f.to_block = UINT64_MAX;
	assert_int_equal(chain_rpc_get_logs(r, &logs, &n, &f), FM_EUNAVAIL);
	assert_msg_contains("logs[0]");
	assert_null(logs);
	chain_rpc_free(r);
	/* no node at all */
	assert_int_equal(chain_rpc_new(&r, "ftp://127.0.0.1/", NULL),
			 FM_EINVAL);
}

/* ---- the stack's anvil ---- */

static void test_rpc__queries(void **state)
{
	struct chain_rpc *r = test_rpc();
	struct chain_key k;
	struct chain_u256 bal;
	struct chain_fees fees;
	uint64_t id, block, nonce;
	char dec[CHAIN_U256_DEC_MAX], seen[128];

	(void)state;
	anvil_key(&k, 9);
	assert_int_equal(chain_rpc_chain_id(r, &id), FM_OK);
	assert_int_equal(id, 31337);
	assert_int_equal(chain_rpc_block_number(r, &block), FM_OK);
	assert_int_equal(chain_rpc_nonce(r, &nonce, k.addr, "pending"), FM_OK);
	assert_int_equal(chain_rpc_balance(r, &bal, k.addr), FM_OK);
	chain_u256_to_dec(dec, sizeof(dec), &bal);
	cast_balance(seen, sizeof(seen), k.addr);
	assert_string_equal(dec, seen);
	assert_int_equal(chain_rpc_fees(r, &fees), FM_OK);
	assert_false(chain_u256_is_zero(&fees.base_fee));
	assert_true(chain_u256_cmp(&fees.max_fee, &fees.base_fee) > 0);
	chain_rpc_free(r);
}

static void transfer(struct chain_rpc *r, const struct chain_key *from,
		     enum chain_tx_type type, const uint8_t to[20],
		     uint64_t wei, struct buf *raw, uint8_t hash[32])
{
	struct chain_tx tx;

	chain_tx_init(&tx);
	tx.type = type;
	tx.has_to = 1;
	memcpy(tx.to, to, 20);
	tx.value = chain_u256_from_u64(wei);
	tx.gas_limit = 21000;
	assert_int_equal(chain_rpc_prepare_tx(r, &tx, from->addr), FM_OK);
	assert_int_equal(chain_tx_sign(raw, hash, &tx, from->priv), FM_OK);
	chain_tx_cleanup(&tx);
}

static void test_rpc__signed_transfers_land(void **state)
{
	struct chain_rpc *r = test_rpc();
	struct chain_key from, dest;
	struct buf raw = BUF_INIT(4096);
	struct chain_receipt rc;
	uint8_t hash[32], sent[32];
	char bal[128];

	(void)state;
	anvil_key(&from, 8);
	assert_int_equal(chain_key_generate(&dest), FM_OK);
	transfer(r, &from, CHAIN_TX_EIP1559, dest.addr, 1234567, &raw, hash);
	assert_int_equal(chain_rpc_send_raw(r, sent, (uint8_t *)raw.data,
					    raw.len), FM_OK);
	assert_memory_equal(sent, hash, 32);
	assert_int_equal(chain_rpc_wait_receipt(r, &rc, hash, 20000, 50),
			 FM_OK);
	assert_int_equal(rc.status, 1);
	assert_int_equal(rc.gas_used, 21000);
	chain_receipt_cleanup(&rc);
	cast_balance(bal, sizeof(bal), dest.addr);
	assert_string_equal(bal, "1234567");
	/* the same bytes again: already mined, still counts as sent */
	assert_int_equal(chain_rpc_send_raw(r, sent, (uint8_t *)raw.data,
					    raw.len), FM_OK);
	cast_balance(bal, sizeof(bal), dest.addr);
	assert_string_equal(bal, "1234567");
	/* a legacy (EIP-155) transfer too */
	buf_reset(&raw);
	transfer(r, &from, CHAIN_TX_LEGACY, dest.addr, 1000, &raw, hash);
	assert_int_equal(chain_rpc_send_raw(r, sent, (uint8_t *)raw.data,
					    raw.len), FM_OK);
	assert_int_equal(chain_rpc_wait_receipt(r, &rc, hash, 20000, 50),
			 FM_OK);
	chain_receipt_cleanup(&rc);
	cast_balance(bal, sizeof(bal), dest.addr);
	assert_string_equal(bal, "1235567");
	buf_cleanup(&raw);
	chain_key_wipe(&dest);
	chain_rpc_free(r);
}

static void test_rpc__node_refusals_are_clear(void **state)
{
	struct chain_rpc *r = test_rpc();
	struct chain_key from, poor;
	struct buf raw = BUF_INIT(4096);
	struct chain_tx tx;
	uint8_t hash[32], sent[32];
	char hex[67];

	(void)state;
	anvil_key(&from, 8);
	/* a used nonce with other content */
	chain_tx_init(&tx);
	tx.has_to = 1;
	memcpy(tx.to, from.addr, 20);
	tx.gas_limit = 21000;
	assert_int_equal(chain_rpc_prepare_tx(r, &tx, from.addr), FM_OK);
	assert_true(tx.nonce > 0);
	tx.nonce -= 1;
	tx.value = chain_u256_from_u64(777);
	assert_int_equal(chain_tx_sign(&raw, hash, &tx, from.priv), FM_OK);
	assert_int_equal(chain_rpc_send_raw(r, sent, (uint8_t *)raw.data,
					    raw.len), FM_ECONFLICT);
	assert_msg_contains("nonce too low");
	/* no money for gas */
	assert_int_equal(chain_key_generate(&poor), FM_OK);
	assert_int_equal(chain_rpc_prepare_tx(r, &tx, poor.addr), FM_OK);
	buf_reset(&raw);
	assert_int_equal(chain_tx_sign(&raw, hash, &tx, poor.priv), FM_OK);
	assert_int_equal(chain_rpc_send_raw(r, sent, (uint8_t *)raw.data,
					    raw.len), FM_EUNPROCESSABLE);
	assert_msg_contains("nsufficient funds");
	/* a receipt that does not exist yet */
	bytes32_hex(hex, hash);
	assert_int_equal(chain_rpc_receipt(r, &(struct chain_receipt){ 0 },
					   hash), FM_ENOTFOUND);
	assert_msg_contains(hex + 2);
	chain_tx_cleanup(&tx);
	buf_cleanup(&raw);
	chain_key_wipe(&poor);
	chain_rpc_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc__bad_answers_are_errors),
		cmocka_unit_test(test_rpc__transport_errors_are_retried),
		cmocka_unit_test(test_rpc__bad_receipts_and_logs),
		cmocka_unit_test(test_rpc__queries),
		cmocka_unit_test(test_rpc__signed_transfers_land),
		cmocka_unit_test(test_rpc__node_refusals_are_clear),
	};
	return cmocka_run_group_tests(tests, bad_server_up, bad_server_down);
}
