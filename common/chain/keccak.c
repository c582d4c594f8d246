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

static inline uint64_t rotl(uint64_t v, unsigned n)
{
	return (v << n) | (v >> (64 - n));
}

/* Rounds written out lane by lane (FIPS 202, 3.2), lane (x, y) being
 * a[x + 5y]: with loops over "% 5" and index tables the state stays in
 * memory, and the permutation is the whole cost of hashing. */
static void keccak_f1600(uint64_t a[25])
{
	uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
	uint64_t b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12;
	uint64_t b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24;

	for (int round = 0; round < 24; round++) {
		/* theta */
		c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
		c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
		c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
		c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
		c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
		d0 = c4 ^ rotl(c1, 1);
		d1 = c0 ^ rotl(c2, 1);
		d2 = c1 ^ rotl(c3, 1);
		d3 = c2 ^ rotl(c4, 1);
		d4 = c3 ^ rotl(c0, 1);
		/* rho and pi: lane (x, y) moves to (y, 2x + 3y) */
		b0 = a[0] ^ d0;
		b16 = rotl(a[5] ^ d0, 36);
		b7 = rotl(a[10] ^ d0, 3);
		b23 = rotl(a[15] ^ d0, 41);
		b14 = rotl(a[20] ^ d0, 18);
		b10 = rotl(a[1] ^ d1, 1);
		b1 = rotl(a[6] ^ d1, 44);
		b17 = rotl(a[11] ^ d1, 10);
		b8 = rotl(a[16] ^ d1, 45);
		b24 = rotl(a[21] ^ d1, 2);
		b20 = rotl(a[2] ^ d2, 62);
		b11 = rotl(a[7] ^ d2, 6);
		b2 = rotl(a[12] ^ d2, 43);
		b18 = rotl(a[17] ^ d2, 15);
		b9 = rotl(a[22] ^ d2, 61);
		b5 = rotl(a[3] ^ d3, 28);
		b21 = rotl(a[8] ^ d3, 55);
		b12 = rotl(a[13] ^ d3, 25);
		b3 = rotl(a[18] ^ d3, 21);
		b19 = rotl(a[23] ^ d3, 56);
		b15 = rotl(a[4] ^ d4, 27);
		b6 = rotl(a[9] ^ d4, 20);
		b22 = rotl(a[14] ^ d4, 39);
		b13 = rotl(a[19] ^ d4, 8);
		b4 = rotl(a[24] ^ d4, 14);
		/* chi */
		a[0] = b0 ^ (~b1 & b2);
		a[1] = b1 ^ (~b2 & b3);
		a[2] = b2 ^ (~b3 & b4);
		a[3] = b3 ^ (~b4 & b0);
		a[4] = b4 ^ (~b0 & b1);
		a[5] = b5 ^ (~b6 & b7);
		a[6] = b6 ^ (~b7 & b8);
		a[7] = b7 ^ (~b8 & b9);
		a[8] = b8 ^ (~b9 & b5);
		a[9] = b9 ^ (~b5 & b6);
		a[10] = b10 ^ (~b11 & b12);
		a[11] = b11 ^ (~b12 & b13);
		a[12] = b12 ^ (~b13 & b14);
		a[13] = b13 ^ (~b14 & b10);
		a[14] = b14 ^ (~b10 & b11);
		a[15] = b15 ^ (~b16 & b17);
		a[16] = b16 ^ (~b17 & b18);
		a[17] = b17 ^ (~b18 & b19);
		a[18] = b18 ^ (~b19 & b15);
		a[19] = b19 ^ (~b15 & b16);
		a[20] = b20 ^ (~b21 & b22);
		a[21] = b21 ^ (~b22 & b23);
		a[22] = b22 ^ (~b23 & b24);
		a[23] = b23 ^ (~b24 & b20);
		a[24] = b24 ^ (~b20 & b21);
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
