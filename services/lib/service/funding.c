#include "service/funding.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "chain/sig.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "market/market.h"
#include "service/checks.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Blocks per eth_getLogs request, and requests per sweep. */
#define SCAN_BLOCKS 2000
#define SCAN_REQUESTS 50
/* Drafts read per page by the first sweep. */
#define DRAFT_PAGE 200

/* Unix seconds of an API timestamp ("2026-05-01T12:00:00.000Z"). */
static int api_time(long long *out, const char *ts)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
			  &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			  &tm.tm_sec) != 6)
		return fm_error_set(FM_EINTERNAL, "stored time '%s'",
				    ts ? ts : "");
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (long long)timegm(&tm);
	return FM_OK;
}

int funding_open_draft(struct svc *s, const char *task_id, int *opened)
{
	struct task_spec spec = { 0 };
	json_t *task = NULL, *t = NULL;
	char tx[67], wei[80];
	int funded = 0, err;

	*opened = 0;
	err = market_task_get(s->db, &task, task_id);
	if (err == FM_ENOTFOUND)
		return FM_OK; /* funded before (or without) being posted */
	if (err)
		return err;
	if (strcmp(json_string_value(json_object_get(task, "state")),
		   "draft") != 0)
		goto done;
	/* the stored spec, with the expiry fixed when it was posted */
	err = task_spec_parse(&spec, json_object_get(task, "spec"), 0);
	if (!err)
		err = api_time(&spec.expires_at, json_string_value(
				       json_object_get(task, "expires_at")));
	if (err) {
		log_warn("draft %s: stored spec: %s", task_id, fm_error_msg());
		err = FM_OK;
		goto done;
	}
	err = checks_funding(s, &spec,
			     json_string_value(json_object_get(task,
							       "creator")),
			     tx, wei, &funded);
	if (err == FM_EUNPROCESSABLE) {
		/* funded, but not as posted: the creator's to sort out */
		log_warn("draft %s stays a draft: %s", task_id,
			 fm_error_msg());
		err = FM_OK;
		goto done;
	}
	if (err || !funded)
		goto done;
	err = market_task_open(s->db, &t, spec.task_id, tx, wei);
	if (err == FM_ECONFLICT)
		err = FM_OK; /* opened meanwhile */
	else if (!err)
		*opened = 1;
done:
	json_decref(t);
	json_decref(task);
	task_spec_cleanup(&spec);
	return err;
}

/* The first sweep on an escrow: every draft once, by pages. */
static int open_all_drafts(struct svc *s, int *opened)
{
	char after[67] = "";
	json_t *page = NULL, *ids, *id;
	size_t i, n;
	int err, one;

	do {
		err = market_draft_ids(s->db, &page, after, DRAFT_PAGE);
		if (err)
			return err;
		ids = json_object_get(page, "ids");
		n = json_array_size(ids);
		json_array_foreach(ids, i, id) {
			err = funding_open_draft(s, json_string_value(id),
						 &one);
			if (err)
				break;
			*opened += one;
			snprintf(after, sizeof(after), "%s",
				 json_string_value(id));
		}
		json_decref(page);
	} while (!err && n == DRAFT_PAGE);
	return err;
}

/* The Funded logs of blocks from..*to; a range holding too many logs
 * for one answer is halved (*to moves down). */
static int funded_logs(struct chain_rpc *r, struct chain_log **logs,
		       size_t *n, const uint8_t escrow[CHAIN_ADDR_LEN],
		       uint64_t from, uint64_t *to)
{
	uint8_t topic[32];
	struct chain_log_filter f = { 0 };
	int err;

	escrow_event_topic(topic, ESCROW_EV_FUNDED);
	f.address = escrow;
	f.topics[0] = topic;
	f.ntopics = 1;
	for (;;) {
		f.from_block = from;
		f.to_block = *to;
		err = chain_rpc_get_logs(r, logs, n, &f);
		if (err != FM_ETOOLARGE || *to == from)
			return err;
		*to = from + (*to - from) / 2;
	}
}

/* Opens the drafts the logs name; on a failure that a later sweep may
 * not meet (chain, database), *stop is the block to read again from. */
static int open_logged(struct svc *s, const struct chain_log *logs, size_t n,
		       int *opened, uint64_t *stop)
{
	for (size_t i = 0; i < n; i++) {
		struct escrow_event ev;
		char id[67] = "0x";
		int one = 0, err;

		if (logs[i].removed ||
		    escrow_decode_log(&ev, &logs[i]) != FM_OK ||
		    ev.kind != ESCROW_EV_FUNDED)
			continue;
		hex_encode(id + 2, ev.task_id, 32);
		err = funding_open_draft(s, id, &one);
		if (err) {
			*stop = logs[i].block_number;
			return err;
		}
		*opened += one;
	}
	return FM_OK;
}

int funding_sweep(struct svc *s, int *opened)
{
	struct chain_rpc *r = NULL;
	struct chain_log *logs = NULL;
	uint8_t escrow[CHAIN_ADDR_LEN];
	unsigned long long cur = 0;
	uint64_t head = 0, to, stop = 0;
	char name[80];
	size_t n = 0;
	int found = 0, err;

	*opened = 0;
	if (!s->operator_address[0] || !s->cfg.escrow_address[0])
		return FM_OK;
	err = chain_address_parse(escrow, s->cfg.escrow_address,
				  "escrow_address");
	if (err)
		return err;
	snprintf(name, sizeof(name), "funded 0x");
	hex_encode(name + strlen(name), escrow, CHAIN_ADDR_LEN);
	err = chain_rpc_new(&r, s->cfg.rpc_url, NULL);
	if (!err)
		err = chain_rpc_block_number(r, &head);
	if (!err)
		err = market_cursor_get(s->db, name, &cur, &found);
	if (err)
		goto done;
	if (!found) {
		err = open_all_drafts(s, opened);
		if (!err)
			err = market_cursor_set(s->db, name, head);
		goto done;
	}
	for (int k = 0; k < SCAN_REQUESTS && cur < head; k++) {
		to = head - cur > SCAN_BLOCKS ? cur + SCAN_BLOCKS : head;
		err = funded_logs(r, &logs, &n, escrow, cur + 1, &to);
		if (err)
			break;
		err = open_logged(s, logs, n, opened, &stop);
		chain_logs_free(logs, n);
		logs = NULL;
		if (err) {
			/* read that block again next time */
			if (stop > cur + 1)
				market_cursor_set(s->db, name, stop - 1);
			break;
		}
		cur = to;
		err = market_cursor_set(s->db, name, cur);
		if (err)
			break;
	}
done:
	chain_rpc_free(r);
	return err;
}
