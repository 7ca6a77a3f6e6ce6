//! How long AKS takes for each kind of step, predicted from a model of its surge upgrade
//! (`upgrade-aks-node-pools-rolling.md`, "How AKS upgrades a node pool"): AKS adds
//! `maxSurge` new nodes, then per batch drains as many old ones (each eviction within
//! `drainTimeoutInMinutes`), waits `nodeSoakDurationInMinutes`, and reimages them onto the
//! new version (they become the next batch's buffer); at the end it drains and deletes the
//! surge nodes. So a pool of `n` nodes with surge `s` takes
//! `provision + ceil(n / s) x (drain + soak + reimage) + drain + delete`.
//!
//! AKS publishes no per-node times. The defaults below are estimates for small VM sizes
//! (UNVERIFIED: say so wherever a forecast is shown); a policy team should override them
//! with what its own fleet shows (`forecast --model FILE`), and the forecast prints the
//! model it used.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-operation durations (YAML keys as the fields, durations as `4m`, `90s`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// A control-plane upgrade by one minor (or a patch).
    #[serde(with = "human")]
    pub control_plane: Duration,
    /// A new VM until its node is Ready.
    #[serde(with = "human")]
    pub node_provision: Duration,
    /// Draining one batch of nodes (evictions and the pods' restart elsewhere).
    #[serde(with = "human")]
    pub node_drain: Duration,
    /// Reimaging one batch onto the new version until its nodes are Ready again.
    #[serde(with = "human")]
    pub node_reimage: Duration,
    /// Deleting the surge nodes at the end.
    #[serde(with = "human")]
    pub node_delete: Duration,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            control_plane: Duration::from_secs(10 * 60),
            node_provision: Duration::from_secs(4 * 60),
            node_drain: Duration::from_secs(2 * 60),
            node_reimage: Duration::from_secs(4 * 60),
            node_delete: Duration::from_secs(60),
        }
    }
}

/// What the model needs of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub count: u32,
    /// Surge nodes per batch (at least 1).
    pub surge: u32,
    /// `nodeSoakDurationInMinutes`.
    pub soak_minutes: u32,
}

impl Model {
    /// One pool's replacement of all its nodes (a version upgrade, a node image upgrade or
    /// a rollback: AKS does all three by surge).
    pub fn pool(&self, p: PoolShape) -> Duration {
        let batches = p.count.div_ceil(p.surge.max(1)).max(1);
        let per_batch = self.node_drain + Duration::from_secs(60 * u64::from(p.soak_minutes)) + self.node_reimage;
        self.node_provision + per_batch * batches + self.node_drain + self.node_delete
    }

    /// Reads a model file: every field optional (the defaults fill in).
    pub fn parse(file: &str, text: &str) -> Result<Model, String> {
        serde_saphyr::from_str(text).map_err(|e| format!("{file}: {e}"))
    }
}

/// Durations written as people write them (`4m`, `1h30m`), within the policy's bounds.
mod human {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::duration::format_duration(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::domain::duration::parse_bounded(&text, "a forecast model", "").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_takes_one_provision_then_a_batch_per_surge_then_the_surge_s_removal() {
        let m = Model::default();
        let one = |count, surge, soak_minutes| {
            m.pool(PoolShape {
                count,
                surge,
                soak_minutes,
            })
            .as_secs()
                / 60
        };
        // 3 nodes, surge 1: 4 + 3 x (2 + 4) + 2 + 1 = 25 minutes.
        assert_eq!(one(3, 1, 0), 25);
        // Surge 3: one batch.
        assert_eq!(one(3, 3, 0), 13);
        // A soak of 5 minutes per batch.
        assert_eq!(one(3, 1, 5), 40);
        let custom = Model::parse("m.yaml", "node_reimage: 10m\ncontrol_plane: 20m\n").unwrap();
        assert_eq!(custom.control_plane, Duration::from_secs(1200));
        assert_eq!(custom.node_provision, Model::default().node_provision);
        assert!(Model::parse("m.yaml", "node_reimage: soon\n").is_err());
        assert!(Model::parse("m.yaml", "colour: blue\n").is_err());
    }
}
