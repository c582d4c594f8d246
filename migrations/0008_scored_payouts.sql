-- Tasks that pay by contribution: a round's payouts carry the sha256 of
-- the scoring report their amounts come from, and are released together
-- with it (the escrow's releaseScored emits Scored(taskId, round,
-- reportHash)).
ALTER TABLE payouts ADD COLUMN round integer CHECK (round >= 1);
ALTER TABLE payouts ADD COLUMN report_hash hash32;
ALTER TABLE payouts ADD CONSTRAINT payouts_scored_round
	CHECK ((report_hash IS NULL) = (round IS NULL));

DO $$
DECLARE c text;
BEGIN
	FOR c IN SELECT conname FROM pg_constraint
		 WHERE conrelid = 'chain_txs'::regclass AND contype = 'c'
		 AND pg_get_constraintdef(oid) LIKE '%release_batch%'
	LOOP
		EXECUTE format('ALTER TABLE chain_txs DROP CONSTRAINT %I', c);
	END LOOP;
END $$;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_kind
	CHECK (kind IN ('release', 'release_batch', 'release_scored', 'refund',
			'cancel'));
-- the result's Shapley value in its round's report, to show beside the
-- amount
ALTER TABLE payouts ADD COLUMN score double precision;
