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

/* Keccak-f[1600] (FIPS 202, 3.2), lane (x, y) in a<x + 5y>. The rounds
 * are written out lane by lane on local variables: with loops over "% 5"
 * and index tables the state stays in memory, and the permutation is the
 * whole cost of hashing (about 3x faster this way). */
static void keccak_f1600(uint64_t st[25])
{
	uint64_t a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11,
		 a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
		 a24;
	uint64_t b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11,
		 b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23,
		 b24;
	uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;

	a00 = st[0];
	a01 = st[1];
	a02 = st[2];
	a03 = st[3];
	a04 = st[4];
	a05 = st[5];
	a06 = st[6];
	a07 = st[7];
	a08 = st[8];
	a09 = st[9];
	a10 = st[10];
	a11 = st[11];
	a12 = st[12];
	a13 = st[13];
	a14 = st[14];
	a15 = st[15];
	a16 = st[16];
	a17 = st[17];
	a18 = st[18];
	a19 = st[19];
	a20 = st[20];
	a21 = st[21];
	a22 = st[22];
	a23 = st[23];
	a24 = st[24];
	for (int round = 0; round < 24; round++) {
		/* theta */
		c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20;
		c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21;
		c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22;
		c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23;
		c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
		d0 = c4 ^ rotl(c1, 1);
		d1 = c0 ^ rotl(c2, 1);
		d2 = c1 ^ rotl(c3, 1);
		d3 = c2 ^ rotl(c4, 1);
		d4 = c3 ^ rotl(c0, 1);
		/* rho and pi: lane (x, y) moves to (y, 2x + 3y) */
		b00 = a00 ^ d0;
		b16 = rotl(a05 ^ d0, 36);
		b07 = rotl(a10 ^ d0, 3);
		b23 = rotl(a15 ^ d0, 41);
		b14 = rotl(a20 ^ d0, 18);
		b10 = rotl(a01 ^ d1, 1);
		b01 = rotl(a06 ^ d1, 44);
		b17 = rotl(a11 ^ d1, 10);
		b08 = rotl(a16 ^ d1, 45);
		b24 = rotl(a21 ^ d1, 2);
		b20 = rotl(a02 ^ d2, 62);
		b11 = rotl(a07 ^ d2, 6);
		b02 = rotl(a12 ^ d2, 43);
		b18 = rotl(a17 ^ d2, 15);
		b09 = rotl(a22 ^ d2, 61);
		b05 = rotl(a03 ^ d3, 28);
		b21 = rotl(a08 ^ d3, 55);
		b12 = rotl(a13 ^ d3, 25);
		b03 = rotl(a18 ^ d3, 21);
		b19 = rotl(a23 ^ d3, 56);
		b15 = rotl(a04 ^ d4, 27);
		b06 = rotl(a09 ^ d4, 20);
		b22 = rotl(a14 ^ d4, 39);
		b13 = rotl(a19 ^ d4, 8);
		b04 = rotl(a24 ^ d4, 14);
		/* chi */
		a00 = b00 ^ (~b01 & b02);
		a01 = b01 ^ (~b02 & b03);
		a02 = b02 ^ (~b03 & b04);
		a03 = b03 ^ (~b04 & b00);
		a04 = b04 ^ (~b00 & b01);
		a05 = b05 ^ (~b06 & b07);
		a06 = b06 ^ (~b07 & b08);
		a07 = b07 ^ (~b08 & b09);
		a08 = b08 ^ (~b09 & b05);
		a09 = b09 ^ (~b05 & b06);
		a10 = b10 ^ (~b11 & b12);
		a11 = b11 ^ (~b12 & b13);
		a12 = b12 ^ (~b13 & b14);
		a13 = b13 ^ (~b14 & b10);
		a14 = b14 ^ (~b10 & b11);
		a15 = b15 ^ (~b16 & b17);
		a16 = b16 ^ (~b17 & b18);
		a17 = b17 ^ (~b18 & b19);
		a18 = b18 ^ (~b19 & b15);
		a19 = b19 ^ (~b15 & b16);
		a20 = b20 ^ (~b21 & b22);
		a21 = b21 ^ (~b22 & b23);
		a22 = b22 ^ (~b23 & b24);
		a23 = b23 ^ (~b24 & b20);
		a24 = b24 ^ (~b20 & b21);
		/* iota */
		a00 ^= round_consts[round];
	}
	st[0] = a00;
	st[1] = a01;
	st[2] = a02;
	st[3] = a03;
	st[4] = a04;
	st[5] = a05;
	st[6] = a06;
	st[7] = a07;
	st[8] = a08;
	st[9] = a09;
	st[10] = a10;
	st[11] = a11;
	st[12] = a12;
	st[13] = a13;
	st[14] = a14;
	st[15] = a15;
	st[16] = a16;
	st[17] = a17;
	st[18] = a18;
	st[19] = a19;
	st[20] = a20;
	st[21] = a21;
	st[22] = a22;
	st[23] = a23;
	st[24] = a24;
}

/* A little-endian 64-bit lane from 8 bytes. */
static inline uint64_t load_lane(const uint8_t *p)
{
	uint64_t v;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(&v, p, 8);
#else
	v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
#endif
	return v;
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

	/* finish a partial block byte by byte */
	while (n > 0 && k->pos != 0) {
		xor_byte(k->st, k->pos++, *s++);
		n--;
		if (k->pos == CHAIN_KECCAK_RATE) {
			keccak_f1600(k->st);
			k->pos = 0;
		}
	}
	/* whole blocks, a lane at a time */
	while (n >= CHAIN_KECCAK_RATE) {
		for (int i = 0; i < CHAIN_KECCAK_RATE / 8; i++)
			k->st[i] ^= load_lane(s + 8 * i);
		keccak_f1600(k->st);
		s += CHAIN_KECCAK_RATE;
		n -= CHAIN_KECCAK_RATE;
	}
	/* the rest starts a new block */
	for (; n >= 8; n -= 8, s += 8, k->pos += 8)
		k->st[k->pos / 8] ^= load_lane(s);
	while (n-- > 0)
		xor_byte(k->st, k->pos++, *s++);
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
