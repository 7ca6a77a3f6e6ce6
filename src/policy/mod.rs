//! Rollout policies: what the user writes (YAML, [`raw`]) and what the rest of ringmaster
//! uses ([`Policy`]), with [`compile`] between them reporting every problem at once as
//! `file:line:col: message`. A policy that compiles can be planned and run; nothing later
//! re-validates it. Schema and examples: `docs/policy.md`; starting points: `policies/`.
//!
//! Pure: compiling reads no file and no clock ([`crate::validate`] does the file reading).
//! Errors are [`crate::yaml::SourceErrors`], the one error type of every input file.

mod compile;
pub mod raw;
pub mod selector;
#[cfg(test)]
mod tests;

pub use compile::{compile, compile_raw, compile_with_snapshot};
pub use selector::Selector;

use crate::domain::VersionSpec;
use crate::domain::fleet::{ClusterState, OsType, PoolMode, PoolState};
use crate::schedule::{CronSchedule, CronWindow, Window};
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::time::Duration;

/// The longest duration a policy may give (soaks, approval expiry, gate settle and
/// timeout, pool soak, window length): 366 days.
///
/// Why a bound at all: chrono panics when a date plus a duration leaves its range, and a
/// rollout stores its policy, so `soak: 99999999d` would crash the daemon again on every
/// restart. Why a year: longer than any real wait (a Kubernetes minor leaves AKS support
/// about a year after it arrives, so a longer soak would outlive the target), shorter than
/// the planner's 400-day look-ahead for windows, and far from chrono's limits, so that
/// sums of a few of them stay exact. The engine's date arithmetic saturates anyway
/// ([`crate::domain::duration::later`]) for policies stored before this bound.
pub use crate::domain::duration::MAX_DURATION;

/// A validated rollout policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub description: Option<String>,
    pub fleet: FleetSelection,
    /// Which node pools of those clusters get pool steps (version and node image).
    pub pools: PoolFilter,
    pub target: Target,
    /// In rollout order; names unique.
    pub rings: Vec<Ring>,
    pub steps: Steps,
    pub gates: Gates,
    pub schedule: Schedule,
    pub preflight: Preflight,
    /// What the rollout does with a cluster another rollout holds.
    pub on_busy: OnBusy,
    /// Among rollouts waiting for the same cluster, the higher goes first.
    pub priority: i32,
}

/// What a rollout does with a cluster that another rollout of this daemon holds (from
/// that cluster's baseline to its end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnBusy {
    /// Wait until the holder ends with the cluster (the reason names holder and step).
    #[default]
    Wait,
    /// Leave the cluster alone in this rollout (reported; not a failed upgrade).
    Skip,
}

/// What happens to a cluster whose preflight finds something blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnBlock {
    /// Leave the cluster alone (reported; not a failed upgrade).
    Skip,
    /// Halt the rollout.
    Halt,
    /// Check again every few minutes until it clears, up to `wait_up_to`, then skip.
    Wait,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub enabled: bool,
    pub on_block: OnBlock,
    pub wait_up_to: Duration,
    pub allow_force_upgrade: bool,
}

impl Default for Preflight {
    fn default() -> Self {
        Preflight {
            enabled: true,
            on_block: OnBlock::Skip,
            wait_up_to: Duration::from_secs(24 * 3600),
            allow_force_upgrade: false,
        }
    }
}

/// Which clusters the policy manages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetSelection {
    /// Empty: any subscription.
    pub subscriptions: Vec<String>,
    /// Any of; empty: every cluster.
    pub include: Vec<Selector>,
    /// Any of.
    pub exclude: Vec<Selector>,
}

/// Where a cluster stands with respect to the fleet selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Managed by the policy.
    In,
    /// Would be in, but an `exclude` selector matches it (reported, not touched).
    Excluded,
    /// Not the policy's business (other subscription, not included).
    Out,
}

impl FleetSelection {
    pub fn membership(&self, c: &ClusterState) -> Membership {
        let in_subscription = self.subscriptions.is_empty()
            || self
                .subscriptions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&c.id.subscription));
        let included = self.include.is_empty() || self.include.iter().any(|s| s.matches(c));
        if !(in_subscription && included) {
            Membership::Out
        } else if self.exclude.iter().any(|s| s.matches(c)) {
            Membership::Excluded
        } else {
            Membership::In
        }
    }
}

/// Which node pools a policy's pool steps (pool version, node image) are for: every
/// criterion given must hold; the default holds for every pool. One service runs
/// several cadences over the same clusters (Linux images weekly, Windows images after
/// Patch Tuesday), and each cadence owns only its pools. The control plane is not a
/// pool: its steps do not depend on this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFilter {
    pub os_type: Option<OsType>,
    /// AKS `osSKU` names as AKS spells them (any of); empty: any.
    pub os_sku: Vec<String>,
    pub mode: Option<PoolMode>,
    /// Names or globs (`*`, `?`; any of, case-insensitive); empty: any.
    pub names: Vec<String>,
}

/// The `osSKU` values AKS knows, as it spells them. A SKU outside this list is a typo
/// that would silently match no pool, so the compiler refuses it.
pub const KNOWN_OS_SKUS: [&str; 11] = [
    "Ubuntu",
    "Ubuntu2204",
    "Ubuntu2404",
    "AzureLinux",
    "AzureLinux3",
    "CBLMariner",
    "Mariner",
    "Windows2019",
    "Windows2022",
    "Windows2025",
    "WindowsAnnual",
];

/// The OS type a known `osSKU` belongs to (every Windows SKU's name starts with Windows).
pub fn os_type_of_sku(sku: &str) -> OsType {
    if sku.to_ascii_lowercase().starts_with("windows") {
        OsType::Windows
    } else {
        OsType::Linux
    }
}

impl PoolFilter {
    /// True when the filter holds for every pool (no `pools:` in the policy).
    pub fn is_all(&self) -> bool {
        self.os_type.is_none() && self.os_sku.is_empty() && self.mode.is_none() && self.names.is_empty()
    }

    pub fn matches(&self, p: &PoolState) -> bool {
        self.os_type.is_none_or(|t| t == p.os_type)
            && (self.os_sku.is_empty() || self.os_sku.iter().any(|s| s.eq_ignore_ascii_case(&p.os_sku)))
            && self.mode.is_none_or(|m| m == p.mode)
            && (self.names.is_empty() || self.names.iter().any(|n| selector::glob_match(n, &p.name)))
    }

    /// The filter as the policy writes it, for reasons and notes (`os_type Windows`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.os_type {
            parts.push(format!("os_type {t:?}"));
        }
        if !self.os_sku.is_empty() {
            parts.push(format!("os_sku {}", self.os_sku.join("|")));
        }
        if let Some(m) = self.mode {
            parts.push(format!("mode {m:?}"));
        }
        if !self.names.is_empty() {
            parts.push(format!("names {}", self.names.join("|")));
        }
        if parts.is_empty() {
            "every pool".into()
        } else {
            parts.join(", ")
        }
    }
}

/// AKS's channel meanings, applied to the versions offered in every involved region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The latest patch of each cluster's current minor.
    Patch,
    /// The latest patch of the minor before the newest (N-1).
    Stable,
    /// The latest patch of the newest minor.
    Rapid,
    /// No version change; node images only.
    NodeImage,
    /// A minor (its latest patch) or an exact patch.
    Pinned(VersionSpec),
}

impl Channel {
    pub fn name(&self) -> String {
        match self {
            Channel::Patch => "patch".into(),
            Channel::Stable => "stable".into(),
            Channel::Rapid => "rapid".into(),
            Channel::NodeImage => "node-image".into(),
            Channel::Pinned(v) => format!("pinned {v}"),
        }
    }
}

/// Which node image later rings get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeImageMode {
    /// Each region's latest image.
    Latest,
    /// The image the first ring ran (per OS SKU), so every ring runs what was proven.
    Consistent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub channel: Channel,
    pub allow_preview: bool,
    /// Empty: any.
    pub allow: Vec<VersionSpec>,
    pub deny: Vec<VersionSpec>,
    pub node_image: NodeImageMode,
}

/// Whether `spec` (a minor or a patch) covers `v`.
pub fn spec_covers(spec: &VersionSpec, v: crate::domain::KubeVersion) -> bool {
    match spec {
        VersionSpec::Minor(m) => v.minor_version() == *m,
        VersionSpec::Exact(e) => *e == v,
    }
}

impl Target {
    pub fn denies(&self, v: crate::domain::KubeVersion) -> bool {
        self.deny.iter().any(|d| spec_covers(d, v))
    }

    pub fn allows(&self, v: crate::domain::KubeVersion) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| spec_covers(a, v))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    pub name: String,
    pub selector: Selector,
    /// At least one; a `MaxParallel` wave, if any, is last.
    pub waves: Vec<Wave>,
    pub soak: Duration,
    /// `None`: no approval needed.
    pub approval: Option<Approval>,
    pub failure_budget: FailureBudget,
    pub on_gate_failure: OnGateFailure,
}

/// What a node pool step whose health gate fails (or times out) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnGateFailure {
    /// The cluster fails and stays as it is (a person decides).
    #[default]
    Hold,
    /// The pool goes back to the version and node image it had before the step (AKS's
    /// node pool rollback), then the gate runs again; the cluster ends `rolledBack`.
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub name: String,
    pub members: WaveMembers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveMembers {
    /// These clusters (by name), in this order.
    Clusters(Vec<String>),
    /// The ring's remaining clusters, at most this many at a time.
    MaxParallel(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Non-empty.
    pub approvers: Vec<String>,
    pub expires_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the whole rollout at the first failed cluster.
    Halt,
    /// Skip the failed cluster, finish the ring; the next ring starts only if the ring
    /// ended with at most `max_failed_clusters` failures.
    SkipAndContinue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    pub on_failure: OnFailure,
    pub max_failed_clusters: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    /// Pools upgraded first, in order (others follow: system pools, then by name).
    pub pool_order: Vec<String>,
    pub pool_soak: Duration,
    pub node_image: bool,
    /// As AKS writes it: `1` or `33%`.
    pub max_surge: Option<String>,
    /// Whole minutes.
    pub drain_timeout_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub pod_readiness: PodReadiness,
    pub nodes_ready: bool,
    pub no_regression: bool,
    pub regression_tolerance: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodReadiness {
    pub min_ready_ratio: f64,
    pub include_namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
    pub settle: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub time_zone: Tz,
    /// When a rollout may start; `None`: any time.
    pub start: Option<CronSchedule>,
    pub respect_aks_maintenance: bool,
    pub windows: Vec<OwnWindow>,
    pub blackouts: Vec<Blackout>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OwnWindow {
    pub name: String,
    pub window: CronWindow,
    /// Empty: every ring.
    pub rings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Blackout {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The days as a UTC interval (in the policy's time zone).
    pub span: Window,
    /// Empty: every ring.
    pub rings: Vec<String>,
}

/// Whether a window or blackout with this ring list applies to `ring`.
pub fn applies_to(rings: &[String], ring: &str) -> bool {
    rings.is_empty() || rings.iter().any(|r| r == ring)
}
