/* Rule and DP options shared by aggregate and simulate. */
#include "fedcli.h"

#include "core/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void fed_flags_init(struct fed_flags *f)
{
	struct ml_agg_opts agg = ML_AGG_OPTS_INIT;

	memset(f, 0, sizeof(*f));
	f->rule = "fedavg";
	f->agg = agg;
	f->dp_noise = -1; /* not given */
	f->dp_delta = 1e-5;
}

int fed_flags_finish(struct fed_flags *f, const char *cmd)
{
	if (ml_agg_rule_parse(&f->agg.rule, f->rule))
		return engine_usage(cmd, "--rule: %s", fm_error_msg());
	if (f->seed_text) {
		char *end;

		errno = 0;
		f->seed = strtoull(f->seed_text, &end, 10);
		if (errno || end == f->seed_text || *end ||
		    f->seed_text[0] == '-')
			return engine_usage(cmd, "--seed \"%s\": expected an "
					    "integer in 0..2^64-1",
					    f->seed_text);
		f->seed_set = 1;
	}
	if (f->dp_noise >= 0 && f->dp_clip == 0)
		return engine_usage(cmd, "--dp-noise needs --dp-clip");
	if (f->dp_clip > 0) {
		if (f->dp_noise < 0)
			return engine_usage(cmd, "--dp-clip needs --dp-noise");
		if (f->agg.rule != ML_AGG_FEDAVG)
			return engine_usage(cmd, "differential privacy works "
					    "with --rule fedavg only, not %s",
					    f->rule);
	}
	return CLI_OK;
}
