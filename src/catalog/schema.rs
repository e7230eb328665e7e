//! The catalog's schema: one migration per version, applied in order and recorded in
//! SQLite's `user_version`. A migration is never changed once released; a new one is added.

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE repositories (
        id TEXT PRIMARY KEY,
        location TEXT NOT NULL,
        first_seen TEXT NOT NULL
     );
     CREATE TABLE packs (
        repo TEXT NOT NULL,
        id BLOB NOT NULL,
        size INTEGER NOT NULL,
        index_id BLOB,
        PRIMARY KEY (repo, id)
     ) WITHOUT ROWID;
     CREATE INDEX packs_unindexed ON packs (repo) WHERE index_id IS NULL;
     CREATE TABLE chunks (
        repo TEXT NOT NULL,
        id BLOB NOT NULL,
        pack BLOB NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL,
        raw_length INTEGER NOT NULL,
        PRIMARY KEY (repo, id)
     ) WITHOUT ROWID;
     CREATE INDEX chunks_by_pack ON chunks (repo, pack);
     CREATE TABLE snapshots (
        repo TEXT NOT NULL,
        id TEXT NOT NULL,
        time TEXT NOT NULL,
        hostname TEXT NOT NULL,
        paths TEXT NOT NULL,
        tags TEXT NOT NULL,
        stats TEXT NOT NULL,
        PRIMARY KEY (repo, id)
     );
     CREATE TABLE file_cache (
        repo TEXT NOT NULL,
        paths_key TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (repo, paths_key)
     );
     CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        repo TEXT NOT NULL,
        kind TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        result TEXT NOT NULL,
        snapshot TEXT,
        files INTEGER,
        bytes_read INTEGER,
        bytes_added INTEGER,
        error TEXT
     );",
    // 2: Object Lock dates this service set, per object ("data/ab/ab12…").
    "CREATE TABLE locks (
        repo TEXT NOT NULL,
        object TEXT NOT NULL,
        until TEXT NOT NULL,
        PRIMARY KEY (repo, object)
     ) WITHOUT ROWID;",
    // 3: the daemon's job queue, and the newest slot planned per source.
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        tier TEXT NOT NULL,
        scheduled TEXT NOT NULL,
        missed INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        queued TEXT NOT NULL,
        started TEXT,
        finished TEXT,
        error TEXT,
        UNIQUE (source, scheduled)
     );
     CREATE INDEX jobs_queued ON jobs (state, scheduled);
     CREATE TABLE planned (
        source TEXT PRIMARY KEY,
        last TEXT NOT NULL
     );",
    // 4: runs made by the daemon name their source, tier, slot and job.
    "ALTER TABLE runs ADD COLUMN source TEXT;
     ALTER TABLE runs ADD COLUMN tier TEXT;
     ALTER TABLE runs ADD COLUMN scheduled TEXT;
     ALTER TABLE runs ADD COLUMN job INTEGER;
     ALTER TABLE jobs ADD COLUMN not_before TEXT;",
    // 5: runs that make no snapshot (forget, prune) say what they did, and what they freed.
    "ALTER TABLE runs ADD COLUMN summary TEXT;
     ALTER TABLE runs ADD COLUMN bytes_freed INTEGER;",
    // 6: evidence records, each tenant's chain in sequence order.
    "CREATE TABLE evidence (
        tenant TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        record BLOB NOT NULL,
        signature TEXT NOT NULL,
        object TEXT NOT NULL,
        PRIMARY KEY (tenant, sequence)
     );",
    // 7: drills: planned (scheduled or requested), running, done, cancelled; they count
    // against the contract's test restores per year.
    "CREATE TABLE drills (
        id INTEGER PRIMARY KEY,
        spec TEXT NOT NULL,
        tenant TEXT NOT NULL,
        contract TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('scheduled', 'requested', 'manual')),
        planned_for TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('planned', 'running', 'done', 'cancelled')),
        requested_by TEXT,
        snapshot TEXT,
        pick TEXT,
        started TEXT,
        finished TEXT,
        outcome TEXT,
        evidence INTEGER,
        cancelled TEXT
     );
     CREATE INDEX drills_by_contract ON drills (contract, planned_for);",
    // 8: API tokens (only a hash of each secret) and the audit log of changes made through
    // the API and the token commands.
    "CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'customer', 'auditor')),
        tenant TEXT,
        label TEXT,
        created TEXT NOT NULL,
        expires TEXT,
        revoked TEXT,
        last_used TEXT
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL
     );",
    // 9: dashboard sessions: a login makes one (only a hash of its secret is kept), logout
    // ends it; a session lasts no longer than its token.
    "CREATE TABLE sessions (
        id_sha256 TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL
     );",
    // 10: what each tenant's repository on each target holds, as last measured.
    "CREATE TABLE usage (
        tenant TEXT NOT NULL,
        target TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        measured TEXT NOT NULL,
        PRIMARY KEY (tenant, target)
     );",
    // 11: sites' one-time enrollment tokens (only a hash of each secret), the agents
    // enrolled with them (each bound to its site and the site's tenant by its certificate),
    // the nonces of agents' recent requests (a request is accepted once), and the sites whose
    // silence was recorded as an incident (once per silence).
    "CREATE TABLE enroll_tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        site TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        used TEXT,
        agent TEXT
     );
     CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        tenant TEXT NOT NULL,
        certificate TEXT NOT NULL,
        statement TEXT NOT NULL,
        signature TEXT NOT NULL,
        enrolled TEXT NOT NULL,
        enroll_token TEXT NOT NULL,
        version TEXT,
        revoked TEXT,
        last_contact TEXT,
        clock_skew_ms INTEGER
     );
     CREATE INDEX agents_by_site ON agents (site);
     CREATE TABLE agent_nonces (
        agent TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen TEXT NOT NULL,
        PRIMARY KEY (agent, nonce)
     );
     CREATE TABLE site_silences (
        site TEXT PRIMARY KEY,
        since TEXT NOT NULL,
        recorded TEXT NOT NULL
     );",
    // 12: records pushed by sites' agents (each agent's chain of each tenant, as it signed
    // them), how far an agent's outbox has been acknowledged (in the agent's own catalog),
    // the backlog each agent reported at its last check-in; jobs asked for at the centre
    // that a site's agent runs (`site`), and at the agent, the centre's job a local one runs
    // for and when its end was reported back.
    "CREATE TABLE site_evidence (
        agent TEXT NOT NULL,
        tenant TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        record BLOB NOT NULL,
        signature TEXT NOT NULL,
        object TEXT NOT NULL,
        received TEXT NOT NULL,
        PRIMARY KEY (agent, tenant, sequence)
     );
     CREATE INDEX site_evidence_by_tenant ON site_evidence (tenant, agent, sequence);
     CREATE TABLE outbox_acks (
        tenant TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL,
        acknowledged TEXT NOT NULL
     );
     ALTER TABLE agents ADD COLUMN backlog INTEGER;
     ALTER TABLE jobs ADD COLUMN site TEXT;
     ALTER TABLE jobs ADD COLUMN centre_job INTEGER;
     ALTER TABLE jobs ADD COLUMN reported TEXT;
     CREATE UNIQUE INDEX jobs_by_centre_job ON jobs (centre_job);",
    // 13: a running job's lease: the instance of the service that runs it (`owner`) renews
    // it while the job runs; on a catalog instances share, another one takes the job over
    // once the lease ran out.
    "ALTER TABLE jobs ADD COLUMN owner TEXT;
     ALTER TABLE jobs ADD COLUMN lease_until TEXT;",
    // 14: a chunk may be in more than one pack (two writers stored it at once): each pack's
    // chunks are all kept, so that an index written for a pack from the catalog is whole.
    "CREATE TABLE chunks_in_packs (
        repo TEXT NOT NULL,
        id BLOB NOT NULL,
        pack BLOB NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL,
        raw_length INTEGER NOT NULL,
        PRIMARY KEY (repo, id, pack)
     ) WITHOUT ROWID;
     INSERT INTO chunks_in_packs (repo, id, pack, offset, length, raw_length)
        SELECT repo, id, pack, offset, length, raw_length FROM chunks;
     DROP TABLE chunks;
     ALTER TABLE chunks_in_packs RENAME TO chunks;
     CREATE INDEX chunks_by_pack ON chunks (repo, pack);",
    // 15: the target a backup run wrote to, and the sequence of its evidence record once
    // that is written: a job taken up again (its instance was cut off) does not back up
    // again to a target that has its snapshot and evidence already.
    "ALTER TABLE runs ADD COLUMN target TEXT;
     ALTER TABLE runs ADD COLUMN evidence INTEGER;",
];
