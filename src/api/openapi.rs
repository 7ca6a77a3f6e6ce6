//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand (the API is
//! small, and a generator would add a dependency and macros on every handler). A test
//! checks that it describes exactly the routes of [`super::routes`].

use serde_json::{Value, json};

fn error_responses(codes: &[u16]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        let description = match c {
            400 => "Bad request (body, query or an expired approval)",
            401 => "No valid bearer token (audited)",
            403 => "Authenticated but not allowed (audited)",
            404 => "Unknown rollout, ring or cluster",
            408 => "The request body did not arrive within the body timeout",
            409 => "The rollout's state does not allow it",
            413 => "The request body is over the limit (64 KiB)",
            414 => "The request URI is over the limit (8 KiB)",
            415 => "A body that is not `Content-Type: application/json`",
            431 => "The request headers are over the limit (16 KiB)",
            503 => {
                "Unavailable: the state store or Entra ID, or a limit reached (`too_many_streams`, `sessions_full`; see `Retry-After`)"
            }
            _ => "Error",
        };
        m.insert(
            c.to_string(),
            json!({ "description": description,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
    }
    Value::Object(m)
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn with_errors(status: &str, success: Value, errors: &[u16]) -> Value {
    let mut r = error_responses(errors);
    r[status] = success;
    r
}

fn param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": ty } })
}

fn body(schema: &str) -> Value {
    json!({ "required": false, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A POST that sends one decision to the engine.
fn decision(summary: &str, description: &str, params: Vec<Value>, req: &str, res: &str) -> Value {
    json!({ "post": {
        "summary": summary, "description": description, "parameters": params,
        "requestBody": body(req),
        "responses": with_errors("200", ok("Accepted: audited and sent to the engine", schema(res)), &[400, 401, 403, 404, 408, 409, 413, 415, 503]),
    }})
}

/// An operator's decision: it answers what it did (`Decision`).
fn operator_decision(summary: &str, description: &str, params: Vec<Value>, req: &str) -> Value {
    let mut responses = with_errors(
        "200",
        ok(
            "Applied by the engine, or unchanged (it was so already); recorded once",
            schema("Decision"),
        ),
        &[400, 401, 403, 404, 408, 409, 413, 415, 503],
    );
    responses["202"] = ok(
        "Queued: audited and sent, not applied within 5 s (the engine is busy or cannot save; see /readyz)",
        schema("Decision"),
    );
    json!({ "post": {
        "summary": summary, "description": description, "parameters": params,
        "requestBody": body(req), "responses": responses,
    }})
}

fn merge(a: Value, b: Value) -> Value {
    let (Value::Object(mut a), Value::Object(b)) = (a, b) else {
        return Value::Null;
    };
    a.extend(b);
    Value::Object(a)
}

/// The schemas of a daemon with several policies (claims, policies, starting one).
fn service_schemas() -> Value {
    json!({
        "Policy": { "type": "object", "properties": {
            "name": { "type": "string" }, "file": { "type": "string" }, "priority": { "type": "integer" },
            "onBusy": { "type": "string", "enum": ["wait", "skip"] }, "start": { "type": ["string", "null"], "description": "The start cron and its time zone" },
            "error": { "type": ["string", "null"], "description": "The file does not compile now: its last good version is in force (or none, when `name` is empty)" } } },
        "Claim": { "type": "object", "properties": {
            "cluster": { "type": "string" }, "rolloutId": { "type": "string" }, "policy": { "type": "string" }, "priority": { "type": "integer" },
            "since": { "type": "string", "format": "date-time" }, "doing": { "type": "string" } } },
        "ClaimWait": { "type": "object", "properties": {
            "cluster": { "type": "string" }, "rolloutId": { "type": "string" }, "policy": { "type": "string" }, "priority": { "type": "integer" },
            "since": { "type": "string", "format": "date-time" }, "seenAt": { "type": "string", "format": "date-time" } } },
        "Claims": { "type": "object", "properties": {
            "claims": { "type": "array", "items": { "$ref": "#/components/schemas/Claim" } },
            "waits": { "type": "array", "items": { "$ref": "#/components/schemas/ClaimWait" } } } },
        "StartRequest": { "type": "object", "additionalProperties": false, "properties": {
            "policy": { "type": "string", "description": "The policy's name; required when the daemon runs several" },
            "reason": { "type": "string" } } },
        "ReleaseRequest": { "type": "object", "additionalProperties": false, "required": ["cluster", "reason"], "properties": {
            "cluster": { "type": "string", "description": "subscription/resourceGroup/name" }, "reason": { "type": "string" } } }
    })
}

fn schemas() -> Value {
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["code", "message"],
            "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
        "SignIn": { "type": "object", "required": ["token"], "properties": {
            "token": { "type": "string", "description": "An API token (static) or an Entra ID access token" } } },
        "Session": { "type": "object", "properties": {
            "signedIn": { "type": "boolean" }, "name": { "type": "string" },
            "groups": { "type": "array", "items": { "type": "string" } }, "operator": { "type": "boolean" },
            "csrf": { "type": "string", "description": "Send as `X-CSRF-Token` with every change made with the session cookie" },
            "entraSignIn": { "type": "boolean", "description": "The dashboard offers Entra ID sign-in (`/auth/login`)" } } },
        "Counts": { "type": "object", "description": "Clusters by state, and `total`", "additionalProperties": { "type": "integer" } },
        "Summary": { "type": "object", "properties": {
            "id": { "type": "string" }, "policy": { "type": "string" }, "state": { "type": "string" }, "status": { "type": "object" },
            "target": { "type": "string" }, "seq": { "type": "integer" }, "now": { "type": "string", "format": "date-time" },
            "counts": { "$ref": "#/components/schemas/Counts" }, "skipped": { "type": "integer" },
            "rings": { "type": "array", "items": { "type": "object", "properties": {
                "name": { "type": "string" }, "state": { "type": "string" }, "status": { "type": "object" }, "paused": { "type": "boolean" },
                "approvers": { "type": "array", "items": { "type": "string" } }, "approval": {},
                "counts": { "$ref": "#/components/schemas/Counts" },
                "waves": { "type": "array", "items": { "type": "object", "properties": {
                    "name": { "type": "string" }, "maxParallel": { "type": "integer" }, "counts": { "$ref": "#/components/schemas/Counts" } } } } } } },
            "pendingApprovals": { "type": "array", "items": { "type": "object", "properties": {
                "ring": { "type": "string" }, "since": { "type": "string", "format": "date-time" },
                "approvers": { "type": "array", "items": { "type": "string" } }, "expiresAfterSeconds": { "type": ["integer", "null"] },
                "mayApprove": { "type": "boolean" }, "mayReject": { "type": "boolean" },
                "expiredApproval": { "type": ["object", "null"] } } } },
            "eta": {}, "you": { "type": "object" } } },
        "ClusterPage": { "type": "object", "properties": {
            "rolloutId": { "type": "string" }, "seq": { "type": "integer" }, "total": { "type": "integer" },
            "offset": { "type": "integer" }, "limit": { "type": "integer" },
            "clusters": { "type": "array", "items": { "type": "object", "properties": {
                "name": { "type": "string" }, "id": { "type": "object" }, "ring": { "type": "string" }, "wave": { "type": "string" },
                "state": { "type": "string" }, "reason": { "type": ["string", "null"] }, "forecastEnd": { "type": ["string", "null"] },
                "preflight": {}, "pools": { "type": "object" },
                "steps": { "type": "array", "items": { "type": "object", "properties": {
                    "what": { "type": "string" }, "state": { "type": "string" }, "detail": { "type": ["string", "null"] },
                    "until": { "type": ["string", "null"] }, "attempts": { "type": "integer" } } } } } } } } },
        "Fleet": { "type": "object", "properties": {
            "takenAt": { "type": "string", "format": "date-time" }, "policy": { "type": "string" }, "target": { "type": "object" },
            "rings": { "type": "array", "items": { "type": "object", "properties": {
                "name": { "type": "string" }, "clusters": { "type": "array", "items": { "type": "object",
                    "description": "As `ringmaster upgrades --output json` shows a cluster, with `placement` (its wave, up to date, or why skipped) and `preflight` (the running rollout's result)" } } } } },
            "outsideRings": { "type": "array", "items": { "type": "object" } }, "problems": { "type": "array" } } },
        "RolloutList": { "type": "object", "properties": {
            "rollouts": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "string" }, "policy": { "type": "string" }, "status": { "type": "string" },
                "updatedAt": { "type": "string", "format": "date-time" } } } },
            "active": { "type": "array", "items": { "type": "string" }, "description": "The rollouts this daemon drives now (one per policy at most)" },
            "policies": { "type": "array", "items": { "$ref": "#/components/schemas/Policy" } } } },
        "Rollout": { "type": "object", "description": "The engine's state of the rollout: rings (status, approval, approvers), waves, clusters (status), steps (status; `gating` has `last`, the gate's reasons), and the plan's skipped clusters.",
            "properties": {
                "id": { "type": "string" }, "policy": { "type": "string" }, "policyFile": { "type": "string" },
                "status": { "type": "object", "properties": { "state": { "enum": ["running", "paused", "succeeded", "halted", "aborted"] } } },
                "target": { "type": "object" }, "approvalTarget": { "type": "string" },
                "createdAt": { "type": "string", "format": "date-time" }, "updatedAt": { "type": "string", "format": "date-time" },
                "seq": { "type": "integer" },
                "rings": { "type": "array", "items": { "type": "object", "properties": {
                    "name": { "type": "string" },
                    "status": { "type": "object", "properties": { "state": { "enum": ["pending", "awaitingApproval", "running", "soaking", "passed", "failed"] } } },
                    "approvers": { "type": "array", "items": { "type": "string" } },
                    "approvalExpiresAfterSeconds": { "type": ["integer", "null"] },
                    "mayApprove": { "type": "boolean", "description": "The caller is in one of the ring's approver groups" },
                    "waves": { "type": "array", "items": { "type": "object" } } } } },
                "skipped": { "type": "array", "items": { "type": "object" } } } },
        "Approval": { "type": "object", "properties": {
            "ring": { "type": "string" }, "target": { "type": "string" }, "approvedBy": { "type": "string" },
            "groups": { "type": "array", "items": { "type": "string" } }, "comment": { "type": "string" },
            "approvedAt": { "type": "string", "format": "date-time" },
            "expiresAt": { "type": ["string", "null"], "format": "date-time" }, "expired": { "type": "boolean" } } },
        "Approvals": { "type": "object", "properties": {
            "rolloutId": { "type": "string" }, "target": { "type": "string" },
            "pending": { "type": "array", "items": { "type": "object", "properties": {
                "ring": { "type": "string" }, "since": { "type": "string", "format": "date-time" },
                "approvers": { "type": "array", "items": { "type": "string" } },
                "expiresAfterSeconds": { "type": ["integer", "null"] }, "mayApprove": { "type": "boolean" },
                "mayReject": { "type": "boolean", "description": "The caller may approve, or is an operator" },
                "expiredApproval": { "type": ["object", "null"] } } } },
            "approvals": { "type": "array", "items": schema("Approval") },
            "rejections": { "type": "array", "items": { "type": "object" } } } },
        "ApproveRequest": { "type": "object", "additionalProperties": false, "properties": {
            "comment": { "type": "string" },
            "expiresAt": { "type": "string", "format": "date-time", "description": "Expire sooner than the ring's expires_after; must be in the future (else 400 approval_expired)." } } },
        "ApproveResponse": { "type": "object", "properties": {
            "rolloutId": { "type": "string" }, "ring": { "type": "string" },
            "alreadyApproved": { "type": "boolean", "description": "True when a live approval of the same ring and target was there first; it is returned and nothing new is recorded." },
            "approval": schema("Approval") } },
        "RejectRequest": { "type": "object", "additionalProperties": false, "required": ["comment"], "properties": { "comment": { "type": "string" } } },
        "ReasonRequest": { "type": "object", "additionalProperties": false, "properties": { "reason": { "type": "string" } } },
        "RollbackRequest": { "type": "object", "additionalProperties": false, "required": ["reason"], "properties": {
            "pool": { "type": "string" }, "reason": { "type": "string" } } },
        "RollbackStarted": { "type": "object", "properties": {
            "cluster": { "type": "string" }, "pool": { "type": "string" }, "state": { "type": "string", "enum": ["accepted"] },
            "fromVersion": { "type": "string" }, "fromImage": { "type": "string" },
            "toVersion": { "type": "string" }, "toImage": { "type": "string" } } },
        "ScopeRequest": { "type": "object", "additionalProperties": false, "description": "No ring and no cluster: the whole rollout.", "properties": {
            "ring": { "type": "string" }, "cluster": { "type": "string", "description": "name, resourceGroup/name or subscription/resourceGroup/name" },
            "reason": { "type": "string" } } },
        "Accepted": { "type": "object", "properties": {
            "rolloutId": { "type": "string" }, "action": { "type": "string" }, "accepted": { "type": "boolean" } } },
        "Decision": { "type": "object", "required": ["rolloutId", "action", "result", "status"], "properties": {
            "rolloutId": { "type": "string" }, "action": { "type": "string" },
            "result": { "enum": ["applied", "unchanged", "queued"], "description": "applied: the engine applied it; unchanged: it was so already, nothing was recorded or sent; queued: recorded and sent, not applied yet" },
            "accepted": { "type": "boolean", "description": "false when unchanged" },
            "status": { "type": "object", "description": "The rollout's status after the call" },
            "scope": { "type": "string" }, "ring": { "type": "string" }, "cluster": { "type": "string" } } },
        "Audit": { "type": "object", "properties": {
            "entries": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" }, "actor": { "type": "string" },
                "action": { "type": "string" }, "rolloutId": { "type": ["string", "null"] }, "subject": { "type": "string" },
                "reason": { "type": "string" }, "detail": {} } } },
            "lastId": { "type": ["integer", "null"] },
            "firstId": { "type": ["integer", "null"] },
            "nextSince": { "type": ["integer", "null"], "description": "Pass as `since` for the next page" },
            "more": { "type": "boolean", "description": "The page was cut by `limit` or by the 1 MiB budget: more entries follow" } } },
    })
}

/// The document.
pub fn document() -> Value {
    let id = param("id", "Rollout id");
    let ring = param("ring", "Ring name");
    let cluster = param(
        "cluster",
        "Cluster: name, resourceGroup/name or subscription/resourceGroup/name (URL-encoded)",
    );
    let approve = decision(
        "Approve promoting the target into a ring",
        "For the ring's approver groups (else 403, audited). Recorded in the store first: a second approval of the same ring and target returns 200 with alreadyApproved. Expires after the ring's expires_after.",
        vec![id.clone(), ring.clone()],
        "ApproveRequest",
        "ApproveResponse",
    );
    // The daemon plans before it starts (202); a control that starts at once says 201.
    let mut start_responses = with_errors(
        "202",
        ok(
            "Queued: the daemon discovers the fleet and plans, then starts it",
            json!({ "type": "object", "properties": { "status": { "type": "string", "enum": ["queued"] }, "requestedBy": { "type": "string" }, "message": { "type": "string" } } }),
        ),
        &[400, 401, 403, 409, 503],
    );
    start_responses["201"] = ok(
        "Started at once",
        json!({ "type": "object", "properties": { "id": { "type": "string" } } }),
    );
    let paths = json!({
        "/healthz": { "get": { "summary": "Liveness: the process answers HTTP (never depends on the state store)", "security": [],
            "responses": { "200": ok("Alive", json!({ "type": "object" })) } } },
        "/readyz": { "get": { "summary": "Readiness: the rollout loop can save its state and the state store answers", "security": [],
            "description": "503 `persist_failed` with the reason while the rollout loop cannot save (disk full, I/O error; it retries), 503 `not_ready` when the store does not answer.",
            "responses": with_errors("200", ok("Ready", json!({ "type": "object" })), &[503]) } },
        "/metrics": { "get": { "summary": "Prometheus metrics", "responses": merge(
            json!({ "200": { "description": "Text exposition format", "content": { "text/plain": { "schema": { "type": "string" } } } } }),
            error_responses(&[401])) } },
        "/openapi.json": { "get": { "summary": "This document",
            "responses": with_errors("200", ok("OpenAPI 3.1", json!({ "type": "object" })), &[401]) } },
        "/api/v1/session": {
            "post": { "summary": "Sign in (the dashboard): a token in, a session cookie out", "security": [],
                "description": "The cookie is HttpOnly, SameSite=Strict (and Secure with `serve --secure-cookies`) and lasts 8 hours. Every change made with it needs the session's CSRF token in `X-CSRF-Token` (else 403 `csrf`). A refused token is audited as `auth.denied`, a sign-in as `session.created` (sampled per caller and minute). One caller keeps at most 16 sessions (a new sign-in ends its oldest); beyond 10,000 in all, 503 `sessions_full`.",
                "requestBody": body("SignIn"),
                "responses": with_errors("201", ok("Signed in; `Set-Cookie` holds the session", schema("Session")), &[400, 401, 415, 503]) },
            "get": { "summary": "Who this session is, and its CSRF token (`signedIn: false` without a live session)", "security": [],
                "responses": { "200": ok("The session", schema("Session")) } },
            "delete": { "summary": "Sign out: the session ends and its cookie is cleared",
                "responses": merge(json!({ "204": { "description": "Signed out" } }), error_responses(&[401, 403])) } },
        "/api/v1/events": { "get": { "summary": "Server-sent events: every committed transition of the running rollout",
            "description": "`hello` first (`{active}`), then one `transition` per committed pass (`{rolloutId, seq, status, at, committedAtMs, entries: [{actor, action, subject, reason}]}`, SSE id = seq). A subscriber more than 1,024 events behind gets `dropped` (`{missed}`) and the stream ends: refetch the summary and subscribe again. A comment every 15 s keeps idle connections open. A stream ends after 10 minutes (the browser reconnects; `retry` is 2 s). At most 256 streams in all and 8 per caller: beyond, 503 `too_many_streams` with `Retry-After`.",
            "responses": merge(json!({ "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } } }), error_responses(&[401, 503])) } },
        "/api/v1/fleet": { "get": { "summary": "Every cluster by ring: versions, node images, support, upgrades offered, placement in the policy's plan",
            "description": "One discovery of the fleet, reused for 60 s. 503 when Azure or the policy cannot be read.",
            "responses": with_errors("200", ok("The fleet", schema("Fleet")), &[401, 503]) } },
        "/api/v1/rollouts/{id}/summary": { "get": { "summary": "A rollout in a few KiB: rings and waves with counts by state, pending approvals (and whether the caller may decide), the ETA",
            "parameters": [id.clone()],
            "responses": with_errors("200", ok("The summary", schema("Summary")), &[401, 404]) } },
        "/api/v1/rollouts/{id}/clusters": { "get": { "summary": "A rollout's clusters in plan order, a page at a time, with their steps",
            "parameters": [id.clone(),
                query("ring", "Only this ring", "string"), query("wave", "Only this wave", "string"),
                query("state", "Only clusters in this state (pending, preparing, running, done, failed, skipped, rolledBack)", "string"),
                query("offset", "Skip this many (default 0)", "integer"), query("limit", "At most this many (1..=500, default 100)", "integer")],
            "responses": with_errors("200", ok("A page", schema("ClusterPage")), &[400, 401, 404]) } },
        "/api/v1/rollouts": {
            "get": { "summary": "Rollouts, and the active one",
                "responses": with_errors("200", ok("Rollouts", schema("RolloutList")), &[401]) },
            "post": { "summary": "Plan and start a rollout of a policy now, outside its schedule (operators)",
                "description": "404 `unknown_policy`, 400 `policy_required` (several policies and none named), 409 `already_running` (a rollout of that policy runs).",
                "requestBody": body("StartRequest"),
                "responses": start_responses } },
        "/api/v1/rollouts/{id}": { "get": { "summary": "A rollout: ring, wave, cluster and step status with gate reasons",
            "parameters": [id.clone()],
            "responses": with_errors("200", ok("The rollout", schema("Rollout")), &[401, 404]) } },
        "/api/v1/rollouts/{id}/approvals": { "get": { "summary": "Rings waiting for approval, who may approve, and every decision",
            "parameters": [id.clone()],
            "responses": with_errors("200", ok("Approvals", schema("Approvals")), &[401, 404, 503]) } },
        "/api/v1/rollouts/{id}/rings/{ring}/approve": approve.clone(),
        "/api/v1/rollouts/{id}/rings/{ring}/promote": approve,
        "/api/v1/rollouts/{id}/rings/{ring}/reject": decision(
            "Reject promoting the target into a ring: the ring fails and the rollout halts",
            "For the ring's approvers and the operators. `comment` is required.",
            vec![id.clone(), ring.clone()], "RejectRequest", "Accepted"),
        "/api/v1/rollouts/{id}/rings/{ring}/promote-now": operator_decision(
            "End a ring's soak now (operators)", "`reason` is required; the ring must be soaking (else 409).",
            vec![id.clone(), ring], "ReasonRequest"),
        "/api/v1/rollouts/{id}/pause": operator_decision(
            "Pause the rollout, a ring or a cluster (operators)", "No new steps start in the scope; running ones finish. Pausing what is paused answers `unchanged`.",
            vec![id.clone()], "ScopeRequest"),
        "/api/v1/rollouts/{id}/resume": operator_decision(
            "Resume the rollout, a ring or a cluster (operators)", "Resuming what is not paused answers `unchanged`.",
            vec![id.clone()], "ScopeRequest"),
        "/api/v1/rollouts/{id}/abort": operator_decision(
            "Abort the rollout (operators)", "`reason` is required. AKS operations in flight are aborted.",
            vec![id.clone()], "ReasonRequest"),
        "/api/v1/rollouts/{id}/clusters/{cluster}/skip": operator_decision(
            "Skip a cluster (operators)", "`reason` is required; the cluster must not be finished.",
            vec![id, cluster.clone()], "ReasonRequest"),
        "/api/v1/clusters/{cluster}/rollback": { "post": {
            "summary": "Roll a node pool back to the version and node image it had (operators)",
            "description": "AKS's node pool rollback to an entry of the pool's `recentlyUsedVersions`: what the pool had before ringmaster's last step on it when AKS still lists it, else AKS's newest entry. `reason` is required; `pool` defaults to the pool ringmaster upgraded last. 409 `rollback_refused` with AKS's reason when AKS would refuse (nothing listed, an operation running, the auto-upgrade channel on); 409 `cluster_busy` while the running rollout upgrades the cluster. Audited before the call (`api.rollback`), then `pool.rollback_started`, and `pool.rolled_back` or `pool.rollback_failed` when AKS's operation ends.",
            "parameters": [cluster.clone()],
            "requestBody": body("RollbackRequest"),
            "responses": with_errors("202", ok("AKS accepted the rollback", schema("RollbackStarted")), &[400, 401, 403, 404, 409, 413, 415, 502, 503]) } },
        "/api/v1/policies": { "get": { "summary": "The policies the daemon runs: name, file, priority, on_busy, start cron, and a compile error if the file broke",
            "responses": with_errors("200", ok("Policies", json!({ "type": "object", "properties": { "policies": { "type": "array", "items": schema("Policy") } } })), &[401]) } },
        "/api/v1/claims": { "get": { "summary": "Which rollout holds which cluster, and which rollouts wait for one (highest priority, then first come)",
            "responses": with_errors("200", ok("Claims", schema("Claims")), &[401, 503]) } },
        "/api/v1/claims/release": { "post": { "summary": "Release a claim whose holder does not run here (operators)",
            "description": "`cluster` and `reason` are required; audited as `claim.released`. 409 `holder_running` when the holder runs in this daemon: skip the cluster in it instead, it lets go when its operation there ends.",
            "requestBody": body("ReleaseRequest"),
            "responses": with_errors("200", ok("Released", json!({ "type": "object", "properties": { "released": schema("Claim") } })), &[400, 401, 403, 404, 409, 413, 415, 503]) } },
        "/api/v1/audit": { "get": { "summary": "The audit log: who did what, when and why",
            "description": "Paged: at most `limit` entries and about 1 MiB per answer. Refused calls appear as `auth.denied` (the first of each source and reason per minute, fields cut) and `auth.denied.repeated` (the count of the others). Entries older than the retention policy are archived to JSON Lines files and leave the log.",
            "parameters": [
                query("rollout", "Only this rollout's entries", "string"),
                query("since", "Entries after this id, oldest first (to follow the log, or page through it from 0); without it, the newest entries", "integer"),
                query("before", "The newest entries before this id (the next page back from the tail); not with `since`", "integer"),
                query("limit", "At most this many (1..=1000, default 100)", "integer"),
                query("ring", "Entries of this ring, its clusters and steps", "string"),
                query("cluster", "Entries of this cluster (by name) and its steps", "string"),
                query("actor", "Entries by this actor", "string")],
            "responses": with_errors("200", ok("Entries, oldest first", schema("Audit")), &[400, 401, 503]) } },
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ringmaster",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Upgrades fleets of AKS clusters ring by ring. Every call but /healthz and /readyz needs `Authorization: Bearer <token>`: a static token from the tokens file or an Entra ID access token. Refusals (401, 403) change nothing and are audited (counted and sampled per source and reason per minute). Errors are `{\"error\": {\"code\", \"message\"}}`, whatever the status (except a request head over 64 KiB, which the HTTP layer closes with a bare 431). Every answer carries `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`. Bodies are JSON (`Content-Type: application/json`, else 415), at most 64 KiB (else 413), sent within 10 s (else 408)."
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A static token or an Entra ID access token (JWT)" } },
            "schemas": merge(schemas(), service_schemas()),
        },
    })
}
