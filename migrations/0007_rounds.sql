-- Federated training over rounds: round r trains from version r-1 and
-- produces version r. A task holds rounds x max_assignments payouts;
-- each round has max_assignments slots, and a contributor holds one live
-- assignment per round.

ALTER TABLE tasks
	ADD COLUMN rounds integer NOT NULL DEFAULT 1
		CHECK (rounds BETWEEN 1 AND 10000),
	ADD COLUMN round_duration_s integer,
	ADD COLUMN min_results integer NOT NULL DEFAULT 1,
	ADD COLUMN target_accuracy double precision
		CHECK (target_accuracy > 0 AND target_accuracy <= 1),
	ADD COLUMN agg_mode text NOT NULL DEFAULT 'sync'
		CHECK (agg_mode IN ('sync', 'async')),
	ADD COLUMN async_buffer integer NOT NULL DEFAULT 1,
	ADD COLUMN max_staleness integer NOT NULL DEFAULT 0
		CHECK (max_staleness >= 0),
	ADD COLUMN current_round integer NOT NULL DEFAULT 1,
	ADD COLUMN end_reason text CHECK (end_reason IN ('rounds_done',
		'target_reached', 'short_round', 'privacy_budget',
		'cancelled', 'expired')),
	ADD COLUMN epsilon double precision CHECK (epsilon >= 0);
-- tasks posted before rounds: one round as long as an assignment
UPDATE tasks SET round_duration_s = assignment_duration_s;
ALTER TABLE tasks ALTER COLUMN round_duration_s SET NOT NULL;
ALTER TABLE tasks
	ADD CONSTRAINT tasks_round_duration
		CHECK (round_duration_s BETWEEN 60 AND 31536000),
	ADD CONSTRAINT tasks_min_results
		CHECK (min_results BETWEEN 1 AND max_assignments),
	ADD CONSTRAINT tasks_async_buffer
		CHECK (async_buffer BETWEEN 1 AND max_assignments),
	ADD CONSTRAINT tasks_current_round
		CHECK (current_round BETWEEN 1 AND rounds);
UPDATE tasks SET end_reason = CASE state WHEN 'closed' THEN 'rounds_done'
	WHEN 'cancelled' THEN 'cancelled' WHEN 'expired' THEN 'expired' END
	WHERE state IN ('closed', 'cancelled', 'expired');

-- the escrow funds every round's payouts
DO $$
DECLARE c text;
BEGIN
	FOR c IN SELECT conname FROM pg_constraint
		 WHERE conrelid = 'tasks'::regclass AND contype = 'c'
		 AND pg_get_constraintdef(oid) LIKE '%funded_wei%reward_wei%'
	LOOP
		EXECUTE format('ALTER TABLE tasks DROP CONSTRAINT %I', c);
	END LOOP;
END $$;
ALTER TABLE tasks ADD CONSTRAINT tasks_funded_rounds
	CHECK (funded_wei IS NULL OR
	       funded_wei = reward_wei * max_assignments * rounds);

CREATE TABLE task_rounds (
	task_id hash32 NOT NULL REFERENCES tasks (id),
	round integer NOT NULL CHECK (round >= 1),
	-- closing: past its deadline with enough results (or every slot of
	-- the last round accepted), waiting for its version
	state text NOT NULL DEFAULT 'open' CHECK (state IN
		('open', 'closing', 'published', 'failed')),
	opened_at timestamptz NOT NULL DEFAULT now(),
	deadline_at timestamptz NOT NULL,
	extended boolean NOT NULL DEFAULT false,
	version integer,
	epsilon double precision CHECK (epsilon >= 0),
	closed_at timestamptz,
	PRIMARY KEY (task_id, round),
	-- version r is the aggregate of round r
	CHECK (version IS NULL OR version = round),
	CHECK ((state = 'published') = (version IS NOT NULL)),
	CHECK ((state IN ('published', 'failed')) = (closed_at IS NOT NULL))
);
CREATE INDEX task_rounds_due ON task_rounds (deadline_at)
	WHERE state IN ('open', 'closing');

-- Round 1 opens with its task, whichever path opens it (taskd's create,
-- its funding sweeper, or an operator by hand).
CREATE FUNCTION fm_open_first_round() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.state = 'open' THEN
		RETURN NULL;
	END IF;
	INSERT INTO task_rounds (task_id, round, deadline_at)
	VALUES (NEW.id, 1, now() + make_interval(secs => NEW.round_duration_s))
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE TRIGGER tasks_open_first_round
	AFTER INSERT OR UPDATE OF state ON tasks
	FOR EACH ROW WHEN (NEW.state = 'open')
	EXECUTE FUNCTION fm_open_first_round();

-- rounds of tasks posted before: version 1 was their one round
INSERT INTO task_rounds (task_id, round, state, opened_at, deadline_at,
			 version, closed_at)
SELECT id, 1,
	CASE WHEN current_version >= 1 THEN 'published'
	     WHEN state = 'open' THEN 'open' ELSE 'failed' END,
	created_at, greatest(now(), created_at) + make_interval(
		secs => round_duration_s),
	CASE WHEN current_version >= 1 THEN 1 END,
	CASE WHEN current_version >= 1 OR state <> 'open' THEN updated_at END
FROM tasks WHERE state <> 'draft';

-- one live assignment per contributor and round
ALTER TABLE assignments ADD COLUMN round integer NOT NULL DEFAULT 1
	CHECK (round >= 1);
DROP INDEX assignments_one_live;
CREATE UNIQUE INDEX assignments_one_live_per_round
	ON assignments (task_id, contributor, round)
	WHERE state IN ('active', 'submitted', 'accepted');
CREATE INDEX assignments_task_round ON assignments (task_id, round, state);

-- the round a result was submitted in, and the version it trained from
ALTER TABLE results
	ADD COLUMN round integer NOT NULL DEFAULT 1 CHECK (round >= 1),
	ADD COLUMN base_version integer NOT NULL DEFAULT 0
		CHECK (base_version >= 0);
CREATE INDEX results_task_round ON results (task_id, round, state);
