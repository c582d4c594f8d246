/* Assertion shared by the chain tests. Include after cmocka.h. */
#ifndef FM_TESTS_CHAIN_ASSERT_H
#define FM_TESTS_CHAIN_ASSERT_H

#include "core/err.h"

#include <string.h>

/* The current error message contains part. */
#define assert_msg_contains(part) \
	do { \
		if (!strstr(fm_error_msg(), (part))) \
			fail_msg("error \"%s\" lacks \"%s\"", fm_error_msg(), \
				 (part)); \
	} while (0)

#endif
