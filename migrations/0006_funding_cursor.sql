-- taskd opens funded drafts from the escrow's Funded logs, scanned from
-- the block after the last one it read, kept here per escrow.
CREATE TABLE chain_cursors (
	name text PRIMARY KEY,
	block bigint NOT NULL CHECK (block >= 0),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Unfunded drafts expire (past their expiry, or unfunded too long): an
-- expired task holds funding only if it was funded. The old rule refused
-- a draft's expiry, and with it every other task's in the same sweep.
DO $$
DECLARE c text;
BEGIN
	FOR c IN SELECT conname FROM pg_constraint
		 WHERE conrelid = 'tasks'::regclass AND contype = 'c'
		 AND pg_get_constraintdef(oid) LIKE '%funded_wei IS NOT NULL%'
	LOOP
		EXECUTE format('ALTER TABLE tasks DROP CONSTRAINT %I', c);
	END LOOP;
END $$;
ALTER TABLE tasks ADD CONSTRAINT tasks_funded_when_live
	CHECK (state IN ('draft', 'expired', 'cancelled')
	       OR funded_wei IS NOT NULL);

CREATE INDEX tasks_drafts ON tasks (creator, created_at) WHERE state = 'draft';
