//! The policy document as written (serde). Unknown fields are errors; values that need
//! checking (versions, durations, cron, enumerations) are kept as spanned strings so that
//! [`super::compile`] can report every bad one at once, each at its own line and column.
//! `docs/policy.md` describes every field with an example.

use crate::yaml::Spanned;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A rollout policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name shown in plans, runs and the audit log.
    pub name: Spanned<String>,
    /// Free text for the humans who read the policy.
    pub description: Option<String>,
    /// Which clusters the policy manages. Default: every cluster discovery sees.
    #[serde(default)]
    pub fleet: RawFleet,
    /// Which node pools get pool steps (version and node image). Default: every pool.
    pub pools: Option<Spanned<RawPools>>,
    /// The version (or node image) the rollout moves clusters to.
    pub target: Spanned<RawTarget>,
    /// The rings, in rollout order; at least one.
    pub rings: Spanned<Vec<Spanned<RawRing>>>,
    /// How each cluster is upgraded.
    #[serde(default)]
    pub steps: RawSteps,
    /// Health checks after every step.
    #[serde(default)]
    pub gates: RawGates,
    /// When steps may start.
    #[serde(default)]
    pub schedule: RawSchedule,
    /// What a blocking preflight finding does to a cluster (docs/preflight.md).
    #[serde(default)]
    pub preflight: RawPreflight,
    /// rollback | hold: what a node pool step whose gate fails does, in every ring that
    /// does not say otherwise. Default hold.
    pub on_gate_failure: Option<Spanned<String>>,
    /// wait | skip: what this policy's rollout does with a cluster another rollout holds
    /// (one daemon runs many policies; one rollout at a time acts on a cluster).
    /// Default wait.
    pub on_busy: Option<Spanned<String>>,
    /// Who goes first when rollouts of several policies wait for the same cluster:
    /// the higher number. Default 0.
    pub priority: Option<i32>,
}

/// Preflight before each cluster's first step.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPreflight {
    /// Whether the engine runs preflight before each cluster's first step. Default true.
    pub enabled: Option<bool>,
    /// skip | halt | wait. Default skip.
    pub on_block: Option<Spanned<String>>,
    /// With `wait`: how long to re-check before skipping the cluster. Default 24h.
    pub wait_up_to: Option<Spanned<String>>,
    /// Whether ringmaster may set AKS's deprecated-API override (`forceUpgrade` with
    /// `until`) on control-plane minor upgrades. Default false.
    pub allow_force_upgrade: Option<bool>,
}

/// Fleet selection: subscriptions, then `include` (any of), then `exclude` (any of).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    /// Subscription ids to look in. Empty: every subscription discovery can read.
    #[serde(default)]
    pub subscriptions: Vec<Spanned<String>>,
    /// A cluster is in the fleet when it matches any of these. Empty: every cluster.
    #[serde(default)]
    pub include: Vec<Spanned<RawSelector>>,
    /// A cluster matching any of these is left alone (and reported as excluded).
    #[serde(default)]
    pub exclude: Vec<Spanned<RawSelector>>,
}

/// Matches node pools; every criterion given must hold (a list holds when any entry
/// matches).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPools {
    /// Linux | Windows.
    pub os_type: Option<Spanned<String>>,
    /// AKS `osSKU` names (Ubuntu, AzureLinux, Windows2022, ...).
    #[serde(default)]
    pub os_sku: Vec<Spanned<String>>,
    /// System | User.
    pub mode: Option<Spanned<String>>,
    /// Pool names or globs (`*`, `?`; case-insensitive).
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
}

/// Matches clusters; every criterion given must hold (a list holds when any entry matches).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelector {
    /// Azure tags that must all be present with these values (tag names ignore case).
    #[serde(default)]
    pub tags: BTreeMap<String, Spanned<String>>,
    /// Resource group names or globs (`*`, `?`; case-insensitive).
    #[serde(default)]
    pub resource_groups: Vec<Spanned<String>>,
    /// Cluster names or globs (`*`, `?`; case-insensitive).
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    /// Subscription ids.
    #[serde(default)]
    pub subscriptions: Vec<Spanned<String>>,
}

/// What the rollout installs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// patch | stable | rapid | node-image | pinned (AKS's channel meanings; see docs).
    pub channel: Spanned<String>,
    /// With `pinned`: a minor (`1.33`, its latest GA patch) or an exact patch (`1.33.2`).
    pub version: Option<Spanned<String>>,
    /// Whether preview versions may be targets. Default false (GA only).
    #[serde(default)]
    pub allow_preview: bool,
    /// Versions (minor or patch) the target may be; empty: any.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Versions (minor or patch) never installed, as a target or on the way to one.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    /// latest | consistent. Default latest.
    pub node_image: Option<Spanned<String>>,
}

/// One ring: a set of clusters upgraded together, wave by wave.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRing {
    /// Unique ring name.
    pub name: Spanned<String>,
    /// Which clusters of the fleet belong to this ring (a cluster belongs to one ring).
    pub selector: Spanned<RawSelector>,
    /// Waves in order. Default: one wave, one cluster at a time.
    #[serde(default)]
    pub waves: Vec<Spanned<RawWave>>,
    /// Wait after the ring's last cluster before the next ring may start. Default 0.
    pub soak: Option<Spanned<String>>,
    /// A human approval before the ring starts. Default: none.
    pub approval: Option<Spanned<RawApproval>>,
    /// What a failed cluster does to the rollout. Default: halt.
    pub failure_budget: Option<Spanned<RawFailureBudget>>,
    /// rollback | hold: overrides the policy's `on_gate_failure` for this ring.
    pub on_gate_failure: Option<Spanned<String>>,
}

/// A wave: either named clusters or "the rest, this many at a time".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWave {
    /// Unique (within the ring) wave name.
    pub name: Spanned<String>,
    /// Cluster names (exact) for an explicit wave, e.g. a canary.
    #[serde(default)]
    pub clusters: Vec<Spanned<String>>,
    /// The ring's remaining clusters, this many at a time (must be the last wave).
    pub max_parallel: Option<Spanned<u32>>,
}

/// Approval before a ring.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// Whether the ring waits for an approval. Default true when `approval` is given.
    pub required: Option<bool>,
    /// Groups whose members may approve; at least one when required.
    #[serde(default)]
    pub approvers: Vec<Spanned<String>>,
    /// An approval not acted on within this long lapses and must be given again.
    pub expires_after: Option<Spanned<String>>,
}

/// Failure budget of a ring.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailureBudget {
    /// halt | skip-and-continue.
    pub on_failure: Spanned<String>,
    /// With skip-and-continue: how many failed clusters the ring may end with and still
    /// let the next ring start. Default 0.
    pub max_failed_clusters: Option<Spanned<u32>>,
}

/// Steps per cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSteps {
    /// Pool names upgraded first, in this order; other pools follow, system pools first,
    /// then by name. Empty: system pools first, then by name.
    #[serde(default)]
    pub pool_order: Vec<Spanned<String>>,
    /// Wait after each pool's upgrade before the next step. Default 0.
    pub pool_soak: Option<Spanned<String>>,
    /// Whether node images are brought up to date after the version. Default true.
    pub node_image: Option<bool>,
    /// maxSurge override for pool upgrades: a count (`1`) or a percentage (`33%`).
    pub max_surge: Option<Spanned<String>>,
    /// drainTimeoutInMinutes override, as a duration in whole minutes (`30m`).
    pub drain_timeout: Option<Spanned<String>>,
}

/// Health gates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    /// Pod readiness after each step.
    pub pod_readiness: Option<Spanned<RawPodReadiness>>,
    /// Whether every node must be Ready after each step. Default true.
    pub nodes_ready: Option<bool>,
    /// Whether the Ready ratio may not drop below the baseline taken before the step. Default true.
    pub no_regression: Option<bool>,
    /// How far (a ratio 0..1) the Ready ratio may drop below the baseline. Default 0.
    pub regression_tolerance: Option<Spanned<f64>>,
}

/// Pod readiness gate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPodReadiness {
    /// Minimum share (0..1) of pods that must be Ready. Default 1.0.
    pub min_ready_ratio: Option<Spanned<f64>>,
    /// Namespaces counted; empty: all.
    #[serde(default)]
    pub include_namespaces: Vec<Spanned<String>>,
    /// Namespaces not counted. Default: none.
    #[serde(default)]
    pub exclude_namespaces: Vec<Spanned<String>>,
    /// Wait after the step before the first look. Default 1m.
    pub settle: Option<Spanned<String>>,
    /// Give up (the cluster failed) when not healthy within this. Default 15m.
    pub timeout: Option<Spanned<String>>,
}

/// When steps may start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// IANA time zone for `start`, `windows` and `blackouts`. Default UTC.
    pub time_zone: Option<Spanned<String>>,
    /// Cron: when a rollout may start. Default: any time.
    pub start: Option<Spanned<String>>,
    /// Whether steps wait for each cluster's AKS maintenance window. Default true.
    pub respect_aks_maintenance: Option<bool>,
    /// Own windows: a step starts only inside one of them. Empty: any time.
    #[serde(default)]
    pub windows: Vec<Spanned<RawWindow>>,
    /// Days when no step starts.
    #[serde(default)]
    pub blackouts: Vec<Spanned<RawBlackout>>,
}

/// An own window: opens at each cron fire time, for `duration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Unique window name.
    pub name: Spanned<String>,
    /// When it opens (cron, in `time_zone`).
    pub cron: Spanned<String>,
    /// How long it stays open.
    pub duration: Spanned<String>,
    /// Rings it applies to. Empty: every ring.
    #[serde(default)]
    pub rings: Vec<Spanned<String>>,
}

/// A blackout: whole days in `time_zone`, both ends inclusive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlackout {
    /// Unique blackout name (shown as the reason a step waits).
    pub name: Spanned<String>,
    /// First day (YYYY-MM-DD).
    pub from: Spanned<String>,
    /// Last day (YYYY-MM-DD). Default: `from`.
    pub to: Option<Spanned<String>>,
    /// Rings it applies to. Empty: every ring.
    #[serde(default)]
    pub rings: Vec<Spanned<String>>,
}
