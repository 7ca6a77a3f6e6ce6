//! What the world offers by region: node image families and their latest images, the
//! Kubernetes patches of a region, version resolution, rollback targets, and the upgrades
//! AKS offers a control plane or a pool (the shared rules applied to the region).

use super::World;
use super::cluster::{Pool, ROLLBACK_WINDOW, RecentVersion};
use crate::version::{KubeVersion, MinorVersion, VersionSpec};
use chrono::NaiveDate;

impl World {
    pub fn image_family(&self, os_sku: &str) -> String {
        self.fleet
            .images
            .iter()
            .find(|l| l.os_sku.eq_ignore_ascii_case(os_sku))
            .map_or_else(|| format!("AKS{os_sku}"), |l| l.family.clone())
    }

    /// The newest node image of an OS SKU that has reached `region` by now.
    pub fn latest_image(&self, region: &str, os_sku: &str) -> Option<String> {
        let today: NaiveDate = self.now.to_datetime().date_naive();
        let line = self
            .fleet
            .images
            .iter()
            .find(|l| l.os_sku.eq_ignore_ascii_case(os_sku))?;
        line.releases
            .iter()
            .filter(|r| r.day_in(region).is_some_and(|d| d <= today))
            .max_by(|a, b| crate::version::compare_image_versions(&a.version, &b.version))
            .map(|r| format!("{}-{}", line.family, r.version))
    }

    /// GA and preview patches offered in `region`, ascending.
    pub fn region_patches(&self, region: &str) -> Vec<(KubeVersion, bool)> {
        let mut v: Vec<(KubeVersion, bool)> = self
            .fleet
            .catalogue
            .iter()
            .filter(|m| m.offered_in(region))
            .flat_map(|m| m.patches.iter().map(move |p| (*p, m.preview)))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// What `kubernetesVersion: spec` resolves to in `region`: a minor means its latest
    /// GA patch, unless the cluster is already on that minor (then nothing changes).
    pub fn resolve_version(&self, region: &str, spec: VersionSpec, current: KubeVersion) -> Option<KubeVersion> {
        match spec {
            // The version it runs: nothing changes, nothing to validate (a GET-then-PUT
            // sends it back even when the region no longer offers it; UNVERIFIED that
            // AKS accepts it, as its docs say it does a `major.minor` it runs).
            VersionSpec::Exact(v) if v == current => Some(current),
            VersionSpec::Exact(v) => self.region_patches(region).iter().any(|(p, _)| *p == v).then_some(v),
            VersionSpec::Minor(m) if m == current.minor_version() => Some(current),
            VersionSpec::Minor(m) => self.latest_patch(region, m),
        }
    }

    pub fn latest_patch(&self, region: &str, m: MinorVersion) -> Option<KubeVersion> {
        let patches = self.region_patches(region);
        let ga = patches
            .iter()
            .filter(|(p, pre)| p.minor_version() == m && !pre)
            .map(|(p, _)| *p)
            .max();
        ga.or_else(|| {
            patches
                .iter()
                .filter(|(p, _)| p.minor_version() == m)
                .map(|(p, _)| *p)
                .max()
        })
    }

    /// The pairs a pool may roll back to now, newest first (its upgrade profile's
    /// `recentlyUsedVersions`): left at most [`ROLLBACK_WINDOW`] ago, on a Kubernetes
    /// version the region still offers ("If the recorded Kubernetes version is no longer
    /// supported by AKS, no rollback target is returned", `roll-back-node-pool-version.md`).
    pub fn rollback_targets(&self, region: &str, pool: &Pool) -> Vec<RecentVersion> {
        let offered = self.region_patches(region);
        pool.recent
            .iter()
            .filter(|r| self.now.since(r.left) <= ROLLBACK_WINDOW)
            .filter(|r| offered.iter().any(|(v, _)| *v == r.version))
            .cloned()
            .collect()
    }

    /// Control-plane upgrades AKS offers from `current` in `region` (the shared rules).
    pub fn control_plane_upgrades(&self, region: &str, current: KubeVersion) -> Vec<(KubeVersion, bool)> {
        crate::rules::control_plane_offers(current, &self.region_patches(region))
    }

    /// Pool upgrades AKS offers under a control plane on `cp` (the shared rules).
    pub fn pool_upgrades(&self, region: &str, pool: KubeVersion, cp: KubeVersion) -> Vec<(KubeVersion, bool)> {
        crate::rules::pool_offers(pool, cp, &self.region_patches(region))
    }
}
