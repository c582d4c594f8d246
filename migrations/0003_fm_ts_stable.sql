-- to_char depends on settings, so fm_ts is STABLE: declared IMMUTABLE the
-- planner could not inline it and called it as a function on every row.
CREATE OR REPLACE FUNCTION fm_ts(timestamptz) RETURNS text
	LANGUAGE sql STABLE STRICT
	AS $$ SELECT to_char($1 AT TIME ZONE 'UTC',
			     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
