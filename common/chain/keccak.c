#include "chain/keccak.h"

#include <string.h>

static const uint64_t round_consts[24] = {
	0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
	0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
	0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
	0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
	0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
	0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
	0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
	0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation of lane (x, y) by rho, indexed x + 5y. */
static const unsigned rho[25] = {
	0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43,
	25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
};

static inline uint64_t rotl(uint64_t v, unsigned n)
{
	return n ? (v << n) | (v >> (64 - n)) : v;
}

static void keccak_f1600(uint64_t a[25])
{
	uint64_t c[5], d[5], b[25];

	for (int round = 0; round < 24; round++) {
		/* theta */
		for (int x = 0; x < 5; x++)
			c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^
			       a[x + 20];
		for (int x = 0; x < 5; x++)
			d[x] = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
		for (int i = 0; i < 25; i++)
			a[i] ^= d[i % 5];
		/* rho and pi: lane (x, y) moves to (y, 2x + 3y) */
		for (int x = 0; x < 5; x++)
			for (int y = 0; y < 5; y++)
				b[y + 5 * ((2 * x + 3 * y) % 5)] =
					rotl(a[x + 5 * y], rho[x + 5 * y]);
		/* chi */
		for (int y = 0; y < 25; y += 5)
			for (int x = 0; x < 5; x++)
				a[y + x] = b[y + x] ^ (~b[y + (x + 1) % 5] &
						       b[y + (x + 2) % 5]);
		/* iota */
		a[0] ^= round_consts[round];
	}
}

/* XORs byte v into the state at byte offset i (lanes are little-endian). */
static inline void xor_byte(uint64_t st[25], size_t i, uint8_t v)
{
	st[i / 8] ^= (uint64_t)v << (8 * (i % 8));
}

void chain_keccak_init(struct chain_keccak *k)
{
	memset(k, 0, sizeof(*k));
}

void chain_keccak_update(struct chain_keccak *k, const void *p, size_t n)
{
	const uint8_t *s = p;

	/* whole aligned lanes go in 8 bytes at a time */
	while (n > 0) {
		if (k->pos % 8 == 0 && n >= 8 &&
		    k->pos + 8 <= CHAIN_KECCAK_RATE) {
			uint64_t lane = 0;

			for (int i = 7; i >= 0; i--)
				lane = (lane << 8) | s[i];
			k->st[k->pos / 8] ^= lane;
			k->pos += 8;
			s += 8;
			n -= 8;
		} else {
			xor_byte(k->st, k->pos++, *s++);
			n--;
		}
		if (k->pos == CHAIN_KECCAK_RATE) {
			keccak_f1600(k->st);
			k->pos = 0;
		}
	}
}

void chain_keccak_final(struct chain_keccak *k, uint8_t out[32])
{
	xor_byte(k->st, k->pos, 0x01);
	xor_byte(k->st, CHAIN_KECCAK_RATE - 1, 0x80);
	keccak_f1600(k->st);
	for (int i = 0; i < 32; i++)
		out[i] = (uint8_t)(k->st[i / 8] >> (8 * (i % 8)));
}

void chain_keccak256(uint8_t out[32], const void *p, size_t n)
{
	struct chain_keccak k;

	chain_keccak_init(&k);
	chain_keccak_update(&k, p, n);
	chain_keccak_final(&k, out);
}
