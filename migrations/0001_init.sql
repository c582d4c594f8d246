-- fedmarket schema: the whole lifecycle of DESIGN.md. Invariants that the
-- services rely on are enforced here too, so a bug cannot over-assign,
-- double-decide or double-pay.

CREATE DOMAIN eth_address AS text
	CHECK (VALUE ~ '^0x[0-9a-f]{40}$');
CREATE DOMAIN hash32 AS text
	CHECK (VALUE ~ '^0x[0-9a-f]{64}$');
CREATE DOMAIN blob_ref AS text
	CHECK (VALUE ~ '^[0-9a-f]{64}$');
CREATE DOMAIN wei AS numeric(78, 0)
	CHECK (VALUE >= 0 AND VALUE < 2::numeric ^ 256);

-- API timestamps: RFC 3339 UTC with milliseconds
CREATE FUNCTION fm_ts(timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT
	AS $$ SELECT to_char($1 AT TIME ZONE 'UTC',
			     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE TABLE accounts (
	address eth_address PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
	id hash32 PRIMARY KEY, -- the escrow's taskId
	creator eth_address NOT NULL REFERENCES accounts (address),
	validator eth_address NOT NULL REFERENCES accounts (address),
	operator eth_address NOT NULL,
	escrow_address eth_address NOT NULL,
	chain_id bigint NOT NULL CHECK (chain_id > 0),
	title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
	description text NOT NULL DEFAULT ''
		CHECK (length(description) <= 20000),
	kind text NOT NULL CHECK (kind IN
		('model_contributor', 'model_engineer', 'data_annotator')),
	state text NOT NULL DEFAULT 'draft' CHECK (state IN
		('draft', 'funded', 'open', 'closed', 'expired', 'cancelled')),
	reward_wei wei NOT NULL CHECK (reward_wei > 0),
	max_assignments integer NOT NULL
		CHECK (max_assignments BETWEEN 1 AND 100000),
	-- active + submitted + accepted assignments; freed on expiry,
	-- abandonment and rejection
	slots_used integer NOT NULL DEFAULT 0,
	assignment_duration_s integer NOT NULL
		CHECK (assignment_duration_s BETWEEN 60 AND 31536000),
	expires_at timestamptz NOT NULL,
	validation_strategy text NOT NULL
		CHECK (validation_strategy IN ('auto', 'manual', 'custom')),
	auto_approval_delay_s integer NOT NULL DEFAULT 0
		CHECK (auto_approval_delay_s >= 0),
	assets_ref blob_ref NOT NULL,
	spec jsonb NOT NULL,
	funding_tx hash32,
	funded_wei wei,
	current_version integer NOT NULL DEFAULT 0
		CHECK (current_version >= 0),
	refund_state text NOT NULL DEFAULT 'none' CHECK (refund_state IN
		('none', 'queued', 'broadcast', 'confirmed', 'failed')),
	refund_tx hash32,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (slots_used BETWEEN 0 AND max_assignments),
	CHECK (state IN ('draft') OR funded_wei IS NOT NULL
	       OR state = 'cancelled'),
	CHECK (funded_wei IS NULL OR funded_wei = reward_wei * max_assignments)
);
CREATE INDEX tasks_state_created ON tasks (state, created_at DESC, id);
CREATE INDEX tasks_creator ON tasks (creator, created_at DESC);
CREATE INDEX tasks_kind ON tasks (kind, state);
CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE state = 'open';

CREATE TABLE assignments (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	task_id hash32 NOT NULL REFERENCES tasks (id),
	contributor eth_address NOT NULL REFERENCES accounts (address),
	state text NOT NULL DEFAULT 'active' CHECK (state IN
		('active', 'submitted', 'accepted', 'rejected', 'expired',
		 'abandoned')),
	created_at timestamptz NOT NULL DEFAULT now(),
	deadline_at timestamptz NOT NULL,
	heartbeat_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (deadline_at > created_at)
);
-- one live (or paid) assignment per contributor and task
CREATE UNIQUE INDEX assignments_one_live
	ON assignments (task_id, contributor)
	WHERE state IN ('active', 'submitted', 'accepted');
CREATE INDEX assignments_task ON assignments (task_id, state);
CREATE INDEX assignments_contributor ON assignments (contributor, created_at DESC);
CREATE INDEX assignments_deadline ON assignments (deadline_at)
	WHERE state = 'active';

CREATE TABLE results (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	assignment_id uuid NOT NULL UNIQUE REFERENCES assignments (id),
	task_id hash32 NOT NULL REFERENCES tasks (id),
	contributor eth_address NOT NULL REFERENCES accounts (address),
	bundle_ref blob_ref NOT NULL,
	num_examples bigint NOT NULL DEFAULT 0 CHECK (num_examples >= 0),
	reported_metrics jsonb NOT NULL DEFAULT '{}',
	checks jsonb NOT NULL DEFAULT '{}', -- what resultd verified
	state text NOT NULL DEFAULT 'submitted' CHECK (state IN
		('submitted', 'accepted', 'rejected')),
	-- auto strategy: accepted by the sweeper once this passes
	auto_accept_at timestamptz,
	submitted_at timestamptz NOT NULL DEFAULT now(),
	decided_at timestamptz
);
CREATE INDEX results_task ON results (task_id, state, submitted_at);
CREATE INDEX results_auto ON results (auto_accept_at)
	WHERE state = 'submitted' AND auto_accept_at IS NOT NULL;

CREATE TABLE decisions (
	id bigserial PRIMARY KEY,
	result_id uuid NOT NULL UNIQUE REFERENCES results (id),
	validator eth_address NOT NULL,
	decision text NOT NULL CHECK (decision IN ('accept', 'reject')),
	reason text CHECK (reason IS NULL OR length(reason) <= 2000),
	metrics jsonb NOT NULL DEFAULT '{}',
	automatic boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (decision = 'accept' OR length(coalesce(reason, '')) > 0)
);

CREATE TABLE model_versions (
	task_id hash32 NOT NULL REFERENCES tasks (id),
	version integer NOT NULL CHECK (version >= 0),
	bundle_ref blob_ref NOT NULL,
	rule text,
	metrics jsonb NOT NULL DEFAULT '{}',
	created_by eth_address NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (task_id, version)
);

CREATE TABLE model_version_results (
	task_id hash32 NOT NULL,
	version integer NOT NULL,
	result_id uuid NOT NULL REFERENCES results (id),
	PRIMARY KEY (task_id, version, result_id),
	FOREIGN KEY (task_id, version) REFERENCES model_versions
);
-- a result is aggregated into at most one version
CREATE UNIQUE INDEX model_version_results_once
	ON model_version_results (result_id);

CREATE TABLE chain_nonces (
	address eth_address PRIMARY KEY,
	next_nonce bigint NOT NULL CHECK (next_nonce >= 0),
	synced_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_txs (
	id bigserial PRIMARY KEY,
	from_address eth_address NOT NULL,
	nonce bigint NOT NULL CHECK (nonce >= 0),
	kind text NOT NULL CHECK (kind IN ('release', 'release_batch', 'refund',
		'cancel')),
	task_id hash32 REFERENCES tasks (id),
	raw_tx bytea NOT NULL,
	tx_hash hash32 NOT NULL UNIQUE,
	max_fee_per_gas wei NOT NULL,
	max_priority_fee_per_gas wei NOT NULL,
	gas_limit bigint NOT NULL CHECK (gas_limit > 0),
	state text NOT NULL DEFAULT 'signed' CHECK (state IN
		('signed', 'broadcast', 'confirmed', 'reverted', 'replaced',
		 'dropped')),
	replaces bigint REFERENCES chain_txs (id),
	attempts integer NOT NULL DEFAULT 0,
	block_number bigint,
	gas_used bigint,
	error text,
	created_at timestamptz NOT NULL DEFAULT now(),
	broadcast_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now()
);
-- one live transaction per nonce; replacements supersede their original
CREATE UNIQUE INDEX chain_txs_live_nonce ON chain_txs (from_address, nonce)
	WHERE state NOT IN ('replaced', 'dropped');
CREATE INDEX chain_txs_pending ON chain_txs (state)
	WHERE state IN ('signed', 'broadcast');

CREATE TABLE payouts (
	id bigserial PRIMARY KEY,
	result_id uuid NOT NULL UNIQUE REFERENCES results (id),
	task_id hash32 NOT NULL REFERENCES tasks (id),
	contributor eth_address NOT NULL,
	amount_wei wei NOT NULL CHECK (amount_wei > 0),
	state text NOT NULL DEFAULT 'queued' CHECK (state IN
		('queued', 'signed', 'broadcast', 'confirmed', 'failed')),
	chain_tx_id bigint REFERENCES chain_txs (id),
	tx_hash hash32,
	block_number bigint,
	gas_used bigint,
	attempts integer NOT NULL DEFAULT 0,
	last_error text,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	confirmed_at timestamptz,
	CHECK (state IN ('queued', 'failed', 'confirmed') OR
	       chain_tx_id IS NOT NULL),
	CHECK (state <> 'confirmed' OR tx_hash IS NOT NULL)
);
CREATE INDEX payouts_queue ON payouts (next_attempt_at, task_id)
	WHERE state = 'queued';
CREATE INDEX payouts_contributor ON payouts (contributor, created_at DESC);
CREATE INDEX payouts_task ON payouts (task_id, state);

-- signed-request replay protection
CREATE TABLE request_nonces (
	address eth_address NOT NULL,
	nonce text NOT NULL CHECK (length(nonce) BETWEEN 16 AND 128),
	seen_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (address, nonce)
);
CREATE INDEX request_nonces_seen ON request_nonces (seen_at);

-- POST idempotency: same key and body -> same answer
CREATE TABLE idempotency_keys (
	address eth_address NOT NULL,
	key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
	method text NOT NULL,
	path text NOT NULL,
	request_sha256 text NOT NULL,
	status integer,
	response text,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (address, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
