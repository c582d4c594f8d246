#include "chain/tx.h"

#include "chain/keccak.h"
#include "chain/rlp.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

/* Encodings are small; this bounds a transaction with the largest data. */
#define TX_MAX (CHAIN_TX_DATA_MAX + 1024)

void chain_tx_init(struct chain_tx *tx)
{
	memset(tx, 0, sizeof(*tx));
	tx->type = CHAIN_TX_EIP1559;
}

void chain_tx_cleanup(struct chain_tx *tx)
{
	free(tx->data);
	tx->data = NULL;
	tx->data_len = 0;
}

int chain_tx_set_data(struct chain_tx *tx, const void *p, size_t n)
{
	uint8_t *d = NULL;

	if (n > CHAIN_TX_DATA_MAX)
		return fm_error_set(FM_ETOOLARGE,
				    "transaction data: %zu bytes, limit %u", n,
				    CHAIN_TX_DATA_MAX);
	if (n) {
		d = malloc(n);
		if (!d)
			return fm_error_set(FM_ENOMEM, "out of memory");
		memcpy(d, p, n);
	}
	free(tx->data);
	tx->data = d;
	tx->data_len = n;
	return FM_OK;
}

/* v * (100 + percent) / 100, rounded up. */
static int bump(struct chain_u256 *v, unsigned percent)
{
	struct chain_u256 r, one = chain_u256_from_u64(1);
	uint64_t rem;

	if (chain_u256_mul_u64(&r, v, 100u + (uint64_t)percent))
		return fm_error_set(FM_EINVAL, "transaction: bumped fee "
				    "overflows 256 bits");
	chain_u256_div_u64(&r, &rem, &r, 100);
	if (rem && chain_u256_add(&r, &r, &one))
		return fm_error_set(FM_EINVAL, "transaction: bumped fee "
				    "overflows 256 bits");
	*v = r;
	return FM_OK;
}

int chain_tx_bump_fees(struct chain_tx *tx, unsigned percent)
{
	struct chain_u256 max_fee = tx->max_fee, prio = tx->max_priority_fee;
	int err = bump(&max_fee, percent);

	if (err)
		return err;
	err = bump(&prio, percent);
	if (err)
		return err;
	tx->max_fee = max_fee;
	tx->max_priority_fee = prio;
	return FM_OK;
}

static int put_u256(struct buf *b, const struct chain_u256 *v)
{
	uint8_t be[32];

	chain_u256_to_be(be, v);
	return rlp_put_be(b, be, 32);
}

/* The chain id and nonce of an EIP-1559 transaction with its priority
 * fee, or a legacy one's nonce. */
static int put_head(struct buf *b, const struct chain_tx *tx)
{
	int err;

	if (tx->type != CHAIN_TX_EIP1559)
		return rlp_put_uint(b, tx->nonce);
	err = rlp_put_uint(b, tx->chain_id);
	if (err)
		return err;
	err = rlp_put_uint(b, tx->nonce);
	if (err)
		return err;
	return put_u256(b, &tx->max_priority_fee);
}

/* The fields every form shares, from the nonce to the data. */
static int put_fields(struct buf *b, const struct chain_tx *tx)
{
	size_t mark;
	int err;

	err = put_head(b, tx);
	if (err)
		return err;
	err = put_u256(b, &tx->max_fee);
	if (err)
		return err;
	err = rlp_put_uint(b, tx->gas_limit);
	if (err)
		return err;
	err = rlp_put_bytes(b, tx->to, tx->has_to ? CHAIN_ADDR_LEN : 0);
	if (err)
		return err;
	err = put_u256(b, &tx->value);
	if (err)
		return err;
	err = rlp_put_bytes(b, tx->data, tx->data_len);
	if (err || tx->type != CHAIN_TX_EIP1559)
		return err;
	rlp_list_begin(b, &mark); /* access list: empty */
	return rlp_list_end(b, mark);
}

static int check_tx(const struct chain_tx *tx)
{
	if (tx->type != CHAIN_TX_EIP1559 && tx->type != CHAIN_TX_LEGACY)
		return fm_error_set(FM_EINVAL, "transaction: unsupported type "
				    "%d", (int)tx->type);
	if (tx->chain_id == 0)
		return fm_error_set(FM_EINVAL, "transaction: chain id is 0");
	/* legacy v = chain_id * 2 + 36 must fit the 64-bit decoder */
	if (tx->chain_id > (UINT64_MAX - 36) / 2)
		return fm_error_set(FM_EINVAL, "transaction: chain id too "
				    "large");
	if (tx->type == CHAIN_TX_EIP1559 &&
	    chain_u256_cmp(&tx->max_priority_fee, &tx->max_fee) > 0)
		return fm_error_set(FM_EINVAL, "transaction: priority fee "
				    "above the max fee");
	if (tx->data_len > CHAIN_TX_DATA_MAX)
		return fm_error_set(FM_ETOOLARGE, "transaction data: %zu "
				    "bytes, limit %u", tx->data_len,
				    CHAIN_TX_DATA_MAX);
	return FM_OK;
}

/* The unsigned and the signed forms share the fields; they differ in the
 * list's tail: EIP-1559 signs [fields] and sends [fields, y, r, s];
 * legacy signs [fields, chain_id, 0, 0] (EIP-155) and sends
 * [fields, v, r, s]. Both hashes stream the pieces, so the fields are
 * encoded once. */
struct tx_parts {
	struct buf fields;
	struct buf tail;
};

/* Appends [type] || rlp list header || fields || tail to out (when out is
 * set) and hashes the same bytes into h (when h is set). */
static int join(struct buf *out, uint8_t h[32], const struct chain_tx *tx,
		const struct tx_parts *p)
{
	uint8_t hdr[10];
	size_t k = 0;
	int err;

	if (tx->type == CHAIN_TX_EIP1559)
		hdr[k++] = 0x02;
	k += rlp_list_header(hdr + k, p->fields.len + p->tail.len);
	if (h) {
		struct chain_keccak kc;

		chain_keccak_init(&kc);
		chain_keccak_update(&kc, hdr, k);
		chain_keccak_update(&kc, p->fields.data, p->fields.len);
		chain_keccak_update(&kc, p->tail.data, p->tail.len);
		chain_keccak_final(&kc, h);
	}
	if (!out)
		return FM_OK;
	err = buf_append(out, hdr, k);
	if (err)
		return err;
	err = buf_append(out, p->fields.data, p->fields.len);
	if (err)
		return err;
	if (p->tail.len)
		return buf_append(out, p->tail.data, p->tail.len);
	return FM_OK;
}

/* Encodes the fields and the unsigned tail into p (initialized here). */
static int parts_unsigned(struct tx_parts *p, const struct chain_tx *tx)
{
	int err = check_tx(tx);

	buf_init(&p->fields, TX_MAX);
	buf_init(&p->tail, 128); /* v, r, s: at most 75 bytes */
	if (err)
		return err;
	err = put_fields(&p->fields, tx);
	if (err || tx->type != CHAIN_TX_LEGACY)
		return err;
	err = rlp_put_uint(&p->tail, tx->chain_id);
	if (err)
		return err;
	err = rlp_put_uint(&p->tail, 0);
	if (err)
		return err;
	return rlp_put_uint(&p->tail, 0);
}

static void parts_cleanup(struct tx_parts *p)
{
	buf_cleanup(&p->fields);
	buf_cleanup(&p->tail);
}

int chain_tx_signing_hash(uint8_t out[32], const struct chain_tx *tx)
{
	struct tx_parts p;
	int err = parts_unsigned(&p, tx);

	if (err)
		goto done;
	err = join(NULL, out, tx, &p);
done:
	parts_cleanup(&p);
	return err;
}

/* v, r and s of sig. */
static int put_signature(struct buf *b, uint64_t v,
			 const uint8_t sig[CHAIN_SIG_LEN])
{
	int err = rlp_put_uint(b, v);

	if (err)
		return err;
	err = rlp_put_be(b, sig, 32);
	if (err)
		return err;
	return rlp_put_be(b, sig + 32, 32);
}

int chain_tx_sign(struct buf *raw, uint8_t hash_out[32],
		  const struct chain_tx *tx, const uint8_t priv[32])
{
	struct tx_parts p;
	uint8_t h[32], sig[CHAIN_SIG_LEN];
	size_t start = raw->len;
	uint64_t v;
	int err = parts_unsigned(&p, tx);

	if (err)
		goto done;
	err = join(NULL, h, tx, &p);
	if (err)
		goto done;
	err = chain_sign_hash(sig, priv, h);
	if (err)
		goto done;
	/* the signed tail: y parity (EIP-1559) or v (EIP-155), r, s */
	v = tx->type == CHAIN_TX_EIP1559 ? sig[64] :
					   tx->chain_id * 2 + 35 + sig[64];
	buf_reset(&p.tail);
	err = put_signature(&p.tail, v, sig);
	if (err)
		goto done;
	err = join(raw, NULL, tx, &p);
	if (err) {
		/* leave raw as it was (a buf over its cap is freed) */
		if (raw->data) {
			raw->len = start;
			raw->data[start] = '\0';
		}
		goto done;
	}
	if (hash_out)
		chain_keccak256(hash_out, raw->data + start, raw->len - start);
done:
	parts_cleanup(&p);
	return err;
}

static int item_u256(struct chain_u256 *out, const struct rlp_item *it,
		     const char *what)
{
	uint8_t be[32];
	int err = rlp_item_be32(be, it, what);

	if (err)
		return err;
	chain_u256_from_be(out, be);
	return FM_OK;
}

/* The chain id (typed only), nonce, fees (the priority fee typed only)
 * and gas limit from f[*i] on; *i moves past them. */
static int decode_head(struct chain_tx *tx, const struct rlp_item *f,
		       int typed, size_t *i)
{
	int err;

	if (typed) {
		err = rlp_item_uint(&tx->chain_id, &f[(*i)++], "chain id");
		if (err)
			return err;
	}
	err = rlp_item_uint(&tx->nonce, &f[(*i)++], "nonce");
	if (err)
		return err;
	if (typed) {
		err = item_u256(&tx->max_priority_fee, &f[(*i)++],
				"max priority fee");
		if (err)
			return err;
	}
	err = item_u256(&tx->max_fee, &f[(*i)++], "max fee");
	if (err)
		return err;
	return rlp_item_uint(&tx->gas_limit, &f[(*i)++], "gas limit");
}

/* v, r and s (vrs[0..2]) into sig; a legacy v gives tx's chain id. */
static int decode_signature(struct chain_tx *tx, uint8_t sig[CHAIN_SIG_LEN],
			    const struct rlp_item *vrs, int typed)
{
	uint64_t v;
	int err;

	err = rlp_item_uint(&v, &vrs[0], "v");
	if (err)
		return fm_error_prefix("transaction");
	err = rlp_item_be32(sig, &vrs[1], "r");
	if (err)
		return fm_error_prefix("transaction");
	err = rlp_item_be32(sig + 32, &vrs[2], "s");
	if (err)
		return fm_error_prefix("transaction");
	if (typed) {
		if (v > 1)
			return fm_error_set(FM_EINVAL, "transaction: y parity "
					    "%llu", (unsigned long long)v);
	} else {
		if (v < 37)
			return fm_error_set(FM_EINVAL, "transaction: v %llu "
					    "is not EIP-155",
					    (unsigned long long)v);
		tx->chain_id = (v - 35) / 2;
		v = (v - 35) % 2;
	}
	sig[64] = (uint8_t)v;
	return FM_OK;
}

/* tx's data, then its sender from the signing hash and sig. */
static int decode_sender(struct chain_tx *tx, uint8_t from[CHAIN_ADDR_LEN],
			 const uint8_t sig[CHAIN_SIG_LEN],
			 const struct rlp_item *data)
{
	uint8_t h[32];
	int err;

	err = chain_tx_set_data(tx, data->p, data->len);
	if (err)
		return err;
	err = chain_tx_signing_hash(h, tx);
	if (err)
		return err;
	return chain_recover(from, h, sig);
}

int chain_tx_decode(struct chain_tx *out, uint8_t from[CHAIN_ADDR_LEN],
		    const uint8_t *raw, size_t n)
{
	struct rlp_item top, f[12];
	struct chain_tx tx;
	uint8_t sig[CHAIN_SIG_LEN];
	size_t count, i = 0, want;
	int err, typed;

	chain_tx_init(&tx);
	if (n == 0)
		return fm_error_set(FM_EINVAL, "transaction: empty");
	if (n > TX_MAX)
		return fm_error_set(FM_ETOOLARGE, "transaction: %zu bytes, "
				    "limit %u", n, (unsigned)TX_MAX);
	typed = raw[0] <= 0x7f;
	if (typed && raw[0] != 0x02)
		return fm_error_set(FM_EINVAL, "transaction: type 0x%02x is "
				    "not supported (only 0x02 and legacy)",
				    raw[0]);
	tx.type = typed ? CHAIN_TX_EIP1559 : CHAIN_TX_LEGACY;
	want = typed ? 12 : 9;
	err = rlp_decode(&top, raw + typed, n - typed);
	if (err)
		return fm_error_prefix("transaction");
	err = rlp_list_items(f, 12, &count, &top, raw + typed);
	if (err)
		return fm_error_prefix("transaction");
	if (count != want)
		return fm_error_set(FM_EINVAL, "transaction: %zu fields, "
				    "expected %zu", count, want);
	err = decode_head(&tx, f, typed, &i);
	if (err)
		return fm_error_prefix("transaction");
	if (f[i].is_list || (f[i].len != 0 && f[i].len != CHAIN_ADDR_LEN))
		return fm_error_set(FM_EINVAL, "transaction: to is neither "
				    "empty nor 20 bytes");
	tx.has_to = f[i].len == CHAIN_ADDR_LEN;
	if (tx.has_to)
		memcpy(tx.to, f[i].p, CHAIN_ADDR_LEN);
	i++;
	err = item_u256(&tx.value, &f[i++], "value");
	if (err)
		return fm_error_prefix("transaction");
	if (f[i].is_list)
		return fm_error_set(FM_EINVAL, "transaction: data is a list");
	if (typed && (!f[i + 1].is_list || f[i + 1].len != 0))
		return fm_error_set(FM_EINVAL, "transaction: access lists are "
				    "not supported");
	err = decode_signature(&tx, sig, &f[want - 3], typed);
	if (err)
		return err;
	err = decode_sender(&tx, from, sig, &f[i]);
	if (err) {
		chain_tx_cleanup(&tx);
		return fm_error_prefix("transaction");
	}
	*out = tx;
	return FM_OK;
}
