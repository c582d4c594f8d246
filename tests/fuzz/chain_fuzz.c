/* Chain decoders over untrusted bytes: raw signed transactions (RLP),
 * tasks(taskId) return data (ABI) and escrow event logs. The first byte
 * picks the decoder. */
#include "chain/escrow.h"
#include "chain/rlp.h"
#include "chain/rpc.h"
#include "chain/tx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_log(const uint8_t *p, size_t n)
{
	struct chain_log log;
	struct escrow_event ev;
	size_t i;

	if (n < 1)
		return;
	memset(&log, 0, sizeof log);
	log.ntopics = p[0] % (CHAIN_LOG_TOPICS_MAX + 1);
	p++, n--;
	for (i = 0; i < log.ntopics; i++) {
		size_t k = n < 32 ? n : 32;
		memcpy(log.topics[i], p, k);
		p += k, n -= k;
	}
	log.data = (uint8_t *)p;
	log.data_len = n;
	(void)escrow_decode_log(&ev, &log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chain_tx tx;
	struct escrow_task task;
	struct rlp_item it, items[16];
	uint8_t from[CHAIN_ADDR_LEN];
	size_t count;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (chain_tx_decode(&tx, from, data + 1, size - 1) == 0)
			chain_tx_cleanup(&tx);
		break;
	case 1:
		(void)escrow_decode_task(&task, data + 1, size - 1);
		break;
	case 2:
		if (rlp_decode(&it, data + 1, size - 1) == 0)
			(void)rlp_list_items(items, 16, &count, &it, data + 1);
		break;
	default:
		fuzz_log(data + 1, size - 1);
		break;
	}
	return 0;
}
