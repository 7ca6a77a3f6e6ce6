//! `ringmaster upgrades`: what `az aks get-upgrades` shows, for the whole fleet at once,
//! from one discovery poll: each cluster's version and the control-plane upgrades AKS
//! offers, each pool's version, upgrades and node image against the region's latest,
//! support status, and warnings a platform engineer acts on.

use crate::discovery::{Discovery, Problem, region_patches};
use crate::domain::MinorVersion;
use crate::domain::fleet::{ClusterId, ClusterState, OsType, PoolMode};
use crate::domain::rules::{control_plane_offers, pool_offers};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// When each minor leaves AKS support. ARM does not say (the AKS release calendar is a
/// web page), so it comes from a file: `"1.31": 2026-12-15` per line.
pub type SupportCalendar = BTreeMap<MinorVersion, NaiveDate>;

pub fn parse_calendar(file: &str, text: &str) -> Result<SupportCalendar, crate::yaml::SourceErrors> {
    crate::yaml::parse::<BTreeMap<MinorVersion, NaiveDate>>(file, text)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub version: String,
    pub is_preview: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Support {
    pub minor: String,
    /// supported | lts-only | unsupported
    pub status: &'static str,
    pub end_of_support: Option<NaiveDate>,
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUpgrades {
    pub name: String,
    pub mode: PoolMode,
    pub os_type: OsType,
    pub os_sku: String,
    pub kubernetes_version: String,
    pub upgrades: Vec<Offer>,
    pub provisioning_state: String,
    pub node_image: String,
    pub latest_node_image: Option<String>,
    pub node_image_behind: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgrades {
    pub id: ClusterId,
    pub location: String,
    pub kubernetes_version: String,
    pub provisioning_state: String,
    pub control_plane_upgrades: Vec<Offer>,
    pub support: Support,
    pub auto_upgrade_channel: String,
    pub node_os_upgrade_channel: String,
    pub pools: Vec<PoolUpgrades>,
    pub warnings: Vec<String>,
    /// Blocking preflight findings against a policy's plan (`upgrades --policy`);
    /// `None` without a policy, or for a cluster the plan does not touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking_findings: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradesReport {
    pub taken_at: DateTime<Utc>,
    pub clusters: Vec<ClusterUpgrades>,
    pub problems: Vec<Problem>,
}

fn offers(v: Vec<(crate::domain::KubeVersion, bool)>) -> Vec<Offer> {
    v.into_iter()
        .map(|(v, p)| Offer {
            version: v.to_string(),
            is_preview: p,
        })
        .collect()
}

/// Builds the report from one discovery.
pub fn build(d: &Discovery, calendar: &SupportCalendar, now: DateTime<Utc>) -> UpgradesReport {
    let clusters = d
        .snapshot
        .clusters
        .iter()
        .map(|c| cluster(d, c, calendar, now))
        .collect();
    UpgradesReport {
        taken_at: d.snapshot.taken_at,
        clusters,
        problems: d.problems.clone(),
    }
}

fn cluster(d: &Discovery, c: &ClusterState, calendar: &SupportCalendar, now: DateTime<Utc>) -> ClusterUpgrades {
    let region = d.snapshot.catalogue.region(&c.location);
    let patches = region.map(region_patches).unwrap_or_default();
    let mut warnings = Vec::new();
    if c.auto_upgrade_channel != "none" {
        warnings.push(format!(
            "AKS's own auto-upgrade channel `{}` is on: two upgraders would fight, so ringmaster reports this cluster but does not upgrade it",
            c.auto_upgrade_channel
        ));
    }
    if c.provisioning_state != "Succeeded" {
        warnings.push(format!("provisioning state is {}", c.provisioning_state));
    }
    let minor = c.control_plane.minor_version();
    let support = support(region, minor, calendar, now);
    if support.status == "unsupported" {
        warnings.push(format!(
            "minor {minor} is out of AKS support in {}: upgrade it first",
            c.location
        ));
    }
    let pools = c
        .pools
        .iter()
        .map(|p| {
            let behind = c.control_plane.minors_after(p.version);
            if behind > 0 {
                warnings.push(format!(
                    "pool {} is {behind} minor version(s) behind the control plane",
                    p.name
                ));
            }
            if p.provisioning_state != "Succeeded" {
                warnings.push(format!(
                    "pool {} provisioning state is {}",
                    p.name, p.provisioning_state
                ));
            }
            let latest = region.and_then(|r| r.node_images.get(&p.os_sku)).cloned();
            let node_image_behind = latest.as_ref().is_some_and(|l| {
                match (
                    crate::domain::NodeImageVersion::parse(l),
                    crate::domain::NodeImageVersion::parse(&p.node_image),
                ) {
                    (Some(l), Some(cur)) => cur.compare(&l) == Some(std::cmp::Ordering::Less),
                    _ => *l != p.node_image,
                }
            });
            PoolUpgrades {
                name: p.name.clone(),
                mode: p.mode,
                os_type: p.os_type,
                os_sku: p.os_sku.clone(),
                kubernetes_version: p.version.to_string(),
                upgrades: offers(pool_offers(p.version, c.control_plane, &patches)),
                provisioning_state: p.provisioning_state.clone(),
                node_image: p.node_image.clone(),
                latest_node_image: latest,
                node_image_behind,
            }
        })
        .collect();
    ClusterUpgrades {
        id: c.id.clone(),
        location: c.location.clone(),
        kubernetes_version: c.control_plane.to_string(),
        provisioning_state: c.provisioning_state.clone(),
        control_plane_upgrades: offers(control_plane_offers(c.control_plane, &patches)),
        support,
        auto_upgrade_channel: c.auto_upgrade_channel.clone(),
        node_os_upgrade_channel: c.node_os_upgrade_channel.clone(),
        pools,
        warnings,
        blocking_findings: None,
    }
}

/// AKS supports the three newest GA minors of a region (N-2) on the KubernetesOfficial
/// plan; older listed minors are LTS-only.
fn support(
    region: Option<&crate::domain::fleet::RegionCatalogue>,
    minor: MinorVersion,
    calendar: &SupportCalendar,
    now: DateTime<Utc>,
) -> Support {
    let end_of_support = calendar.get(&minor).copied();
    let days_left = end_of_support.map(|d| (d - now.date_naive()).num_days());
    let status = match region {
        None => "unknown",
        Some(r) => {
            let mut ga: Vec<MinorVersion> = r.minors.iter().filter(|m| !m.is_preview).map(|m| m.minor).collect();
            ga.sort();
            let newest3 = &ga[ga.len().saturating_sub(3)..];
            let listed = r.minors.iter().find(|m| m.minor == minor);
            match listed {
                _ if days_left.is_some_and(|d| d < 0) => "unsupported",
                Some(m)
                    if newest3.contains(&minor)
                        && (m.support_plans.is_empty()
                            || m.support_plans.iter().any(|p| p == "KubernetesOfficial")) =>
                {
                    "supported"
                }
                Some(m) if m.support_plans.iter().any(|p| p == "AKSLongTermSupport") => "lts-only",
                Some(_) if ga.contains(&minor) => "supported",
                _ => "unsupported",
            }
        }
    };
    Support {
        minor: minor.to_string(),
        status,
        end_of_support,
        days_left,
    }
}

/// A table that fits 100 columns: one line per cluster, one per pool, warnings below.
pub fn render_table(r: &UpgradesReport) -> String {
    let mut out = String::new();
    // The preflight column, only when a policy's preflight ran.
    let blocks = r.clusters.iter().any(|c| c.blocking_findings.is_some());
    let blocks_col = |c: &ClusterUpgrades| match (blocks, c.blocking_findings) {
        (false, _) => String::new(),
        (true, Some(n)) => format!("{n:<7}"),
        (true, None) => format!("{:<7}", "-"),
    };
    let _ = crate::safe_writeln!(
        out,
        "{:<36} {:<12} {:<8} {:<24} {}SUPPORT",
        "CLUSTER",
        "LOCATION",
        "VERSION",
        "CONTROL-PLANE UPGRADES",
        if blocks { "BLOCKS  " } else { "" }
    );
    for c in &r.clusters {
        let ups: Vec<String> = c
            .control_plane_upgrades
            .iter()
            .map(|o| {
                if o.is_preview {
                    format!("{}*", o.version)
                } else {
                    o.version.clone()
                }
            })
            .collect();
        let ups = if ups.is_empty() { "-".to_string() } else { ups.join(" ") };
        let support = match (c.support.status, c.support.days_left) {
            ("supported", Some(d)) => format!("{d} days left"),
            (s, Some(d)) if d < 0 => format!("{s} ({} days ago)", -d),
            (s, _) => s.to_string(),
        };
        let name = format!("{}/{}", c.id.resource_group, c.id.name);
        let _ = crate::safe_writeln!(
            out,
            "{:<36} {:<12} {:<8} {:<24} {}{}",
            truncate(&name, 36),
            truncate(&c.location, 12),
            c.kubernetes_version,
            truncate(&ups, 24),
            if blocks {
                format!("{} ", blocks_col(c))
            } else {
                String::new()
            },
            support
        );
        for p in &c.pools {
            let image_now = p.node_image.rsplit_once('-').map_or(p.node_image.as_str(), |(_, v)| v);
            let image = match (&p.latest_node_image, p.node_image_behind) {
                (Some(l), true) => format!("{image_now} -> {}", l.rsplit_once('-').map_or(l.as_str(), |(_, v)| v)),
                (Some(_), false) => format!("{image_now} (latest)"),
                (None, _) => image_now.to_string(),
            };
            let kind = format!("{:?}/{:?}", p.mode, p.os_type);
            let _ = crate::safe_writeln!(
                out,
                "  {:<12} {:<14} {:<8} image {}",
                truncate(&p.name, 12),
                kind,
                p.kubernetes_version,
                image
            );
        }
        for w in &c.warnings {
            let _ = crate::safe_writeln!(out, "  ! {}", truncate(w, 96));
        }
    }
    for p in &r.problems {
        let _ = crate::safe_writeln!(out, "problem: {}: {}", p.subject, p.reason);
    }
    if r.clusters
        .iter()
        .any(|c| c.control_plane_upgrades.iter().any(|o| o.is_preview))
    {
        let _ = crate::safe_writeln!(out, "* preview version");
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
