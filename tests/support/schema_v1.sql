-- The schema of a v1 state file, as ringmaster 0.1 (issue 5) created it, with one
-- audit entry: the migration test opens it with the current store.

CREATE TABLE rollouts (
    id          TEXT PRIMARY KEY NOT NULL,
    policy_name TEXT NOT NULL,
    status      TEXT NOT NULL,
    state_json  TEXT NOT NULL CHECK (json_valid(state_json)),
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
    cluster     TEXT NOT NULL,
    step        INTEGER NOT NULL CHECK (step >= 0),
    kind        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    operation   TEXT CHECK (operation IS NULL OR json_valid(operation)),
    outcome     TEXT CHECK (outcome IS NULL OR outcome <> ''),
    UNIQUE (rollout_id, cluster, step, kind)
) STRICT;
CREATE INDEX intents_open ON intents (rollout_id, id) WHERE outcome IS NULL;
CREATE TRIGGER intents_never_deleted BEFORE DELETE ON intents
BEGIN SELECT RAISE(ABORT, 'intents are never deleted'); END;
CREATE TRIGGER intents_identity_fixed
BEFORE UPDATE OF id, rollout_id, cluster, step, kind, recorded_at ON intents
BEGIN SELECT RAISE(ABORT, 'an intent''s identity never changes'); END;
CREATE TRIGGER intents_outcome_final BEFORE UPDATE ON intents WHEN OLD.outcome IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a closed intent is final'); END;

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL CHECK (actor <> ''),
    action     TEXT NOT NULL CHECK (action <> ''),
    rollout_id TEXT,
    subject    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;
CREATE INDEX audit_by_rollout ON audit (rollout_id, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Approvals and rejections of a ring's promotion to a target. `live` matters for
-- approvals only: 1 until the approval expires (noticed when the next one is
-- recorded) or a rejection revokes it. The partial unique index is what makes two
-- concurrent approvals record once.
CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
    ring        TEXT NOT NULL,
    target      TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    decided_by  TEXT NOT NULL CHECK (decided_by <> ''),
    groups_json TEXT NOT NULL CHECK (json_valid(groups_json)),
    comment     TEXT NOT NULL,
    decided_at  TEXT NOT NULL,
    expires_at  TEXT CHECK (expires_at IS NULL OR expires_at > decided_at),
    live        INTEGER NOT NULL CHECK (live IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX approvals_one_live ON approvals (rollout_id, ring, target)
    WHERE decision = 'approve' AND live = 1;
CREATE INDEX approvals_by_rollout ON approvals (rollout_id, id);
CREATE TRIGGER approvals_never_deleted BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are never deleted'); END;
CREATE TRIGGER approvals_only_end BEFORE UPDATE ON approvals
WHEN NOT (OLD.live = 1 AND NEW.live = 0 AND NEW.id = OLD.id AND NEW.rollout_id = OLD.rollout_id
          AND NEW.ring = OLD.ring AND NEW.target = OLD.target AND NEW.decision = OLD.decision
          AND NEW.decided_by = OLD.decided_by AND NEW.groups_json = OLD.groups_json
          AND NEW.comment = OLD.comment AND NEW.decided_at = OLD.decided_at
          AND NEW.expires_at IS OLD.expires_at)
BEGIN SELECT RAISE(ABORT, 'an approval only ever stops being live'); END;

CREATE TABLE schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO schema_version (id, version) VALUES (1, 1);
INSERT INTO audit (at, actor, action, rollout_id, subject, reason, detail)
VALUES ('2026-01-01T00:00:00.000000000Z', 'ringmaster', 'rollout.started', 'r1', 'rollout', '', 'null');
