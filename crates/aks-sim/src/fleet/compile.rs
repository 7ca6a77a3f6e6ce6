//! Validation of the raw fleet document into the model: the `Compiler` that collects
//! every problem as `file:line:col: message`, the name and count rules, and the compilation
//! of the catalogue, node images, durations and ARM settings. Clusters and faults have
//! their own files.

use super::cluster::compile_cluster;
use super::faults::compile_fault;
use super::model::{
    ArmSettings, Bucket, CatalogueMinor, ClusterDef, DEFAULT_CLIENT, DEFAULT_TENANT, Durations, Fleet, ImageLine,
    ImageRelease,
};
use super::raw::{FleetFile, RawArm, RawBucket, RawDurations, RawImageLine, RawMinor};
use crate::version::{KubeVersion, MinorVersion};
use chrono::{DateTime, NaiveDate, Utc};
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use yaml_spans::{Diagnostics, SourceErrors, Spanned};

pub(super) const CLUSTER_NAME_RULE: &str = "^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$";
pub(super) const POOL_NAME_RULE: &str = "^[a-z][a-z0-9]{0,11}$";

pub(crate) fn valid_cluster_name(s: &str) -> bool {
    let b = s.as_bytes();
    let ok_inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(ok_inner)
}

pub fn valid_pool_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=12).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `"33%"` or `"3"`; `None` when neither.
pub(crate) fn parse_count_or_percent(s: &str) -> Option<(u32, bool)> {
    match s.strip_suffix('%') {
        Some(p) => p.parse().ok().filter(|v| (0..=100).contains(v)).map(|v| (v, true)),
        None => s.parse().ok().map(|v| (v, false)),
    }
}

pub(crate) struct Compiler {
    pub(crate) d: Diagnostics,
}

impl Compiler {
    /// A duration of at most [`MAX_DURATION`]; an invalid one is reported and `default`
    /// stands in for it.
    pub(super) fn duration(&mut self, s: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(s) = s else { return default };
        yaml_spans::duration::parse_bounded(&s.value, "a fleet file", "").unwrap_or_else(|e| {
            self.d.at(s, e);
            default
        })
    }

    fn date(&mut self, s: &Spanned<String>) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(&s.value, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.d
                    .at(s, format!("`{}` is not a date (expected YYYY-MM-DD)", s.value));
                None
            }
        }
    }

    pub(crate) fn version(&mut self, s: &Spanned<String>) -> Option<KubeVersion> {
        match s.value.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.d.at(s, format!("{e}"));
                None
            }
        }
    }

    pub(crate) fn one_of(
        &mut self,
        s: &Option<Spanned<String>>,
        allowed: &[&str],
        default: &str,
        field: &str,
    ) -> String {
        match s {
            None => default.to_string(),
            Some(v) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(&v.value)) {
                Some(a) => a.to_string(),
                None => {
                    self.d.at(
                        v,
                        format!("{field} `{}` is not one of: {}", v.value, allowed.join(", ")),
                    );
                    default.to_string()
                }
            },
        }
    }
}

/// Validates the raw document into a [`Fleet`], reporting every error found.
pub fn compile(file: &str, raw: FleetFile) -> Result<Fleet, SourceErrors> {
    let mut c = Compiler {
        d: Diagnostics::new(file),
    };
    let start_time = raw
        .start_time
        .as_ref()
        .and_then(|s| match DateTime::parse_from_rfc3339(&s.value) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                c.d.at(
                    s,
                    format!("`{}` is not an RFC 3339 time (e.g. 2026-11-30T08:00:00Z)", s.value),
                );
                None
            }
        });

    let mut subscriptions = Vec::new();
    for s in &raw.subscriptions {
        if subscriptions.contains(&s.value) {
            c.d.at(s, format!("subscription `{}` is listed twice", s.value));
        } else if s.value.is_empty() || !s.value.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-') {
            c.d.at(
                s,
                format!("subscription `{}` is not a subscription id (a GUID)", s.value),
            );
        } else {
            subscriptions.push(s.value.clone());
        }
    }
    if raw.subscriptions.is_empty() {
        c.d.at_location(
            Location::UNKNOWN,
            "`subscriptions` must list at least one subscription id",
        );
    }

    let catalogue = compile_catalogue(&mut c, &raw.versions);
    let images = compile_images(&mut c, &raw.node_images);
    let durations = compile_durations(&mut c, &raw.durations);
    let arm = compile_arm(&mut c, &raw.arm);
    let quotas = crate::quota::compile(&mut c, &raw.quotas, &subscriptions);
    let virtual_networks = crate::network::compile(&mut c, &raw.virtual_networks, &subscriptions);

    // Each compiled cluster keeps the position it came from, so later checks point at
    // the right line even when an earlier cluster failed to compile.
    let mut clusters: Vec<(Location, ClusterDef)> = Vec::new();
    for rc in &raw.clusters {
        if let Some(cl) = compile_cluster(&mut c, rc, &subscriptions, &virtual_networks) {
            check_cluster_version(&mut c, rc.value.kubernetes_version.referenced, &cl, &catalogue);
            clusters.push((rc.value.name.referenced, cl));
        }
    }
    if let Some(g) = &raw.generate {
        let generated = crate::generate::expand(&mut c, g, &subscriptions);
        if let Some(first) = generated.first() {
            check_cluster_version(&mut c, g.value.kubernetes_version.referenced, first, &catalogue);
        }
        clusters.extend(generated.into_iter().map(|cl| (g.referenced, cl)));
    }
    if catalogue.is_empty() {
        c.d.at_location(Location::UNKNOWN, "`versions` must list at least one minor version");
    }
    let mut seen = BTreeSet::new();
    for (at, cl) in &clusters {
        let key = (
            cl.subscription.clone(),
            cl.resource_group.to_ascii_lowercase(),
            cl.name.to_ascii_lowercase(),
        );
        if !seen.insert(key) {
            let msg = format!(
                "cluster `{}` is defined twice in resource group `{}`",
                cl.name, cl.resource_group
            );
            c.d.at_location(*at, msg);
        }
    }
    let clusters: Vec<ClusterDef> = clusters.into_iter().map(|(_, cl)| cl).collect();

    let names: BTreeSet<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let mut faults = Vec::new();
    for f in &raw.faults {
        if let Some(f) = compile_fault(&mut c, f, &names) {
            faults.push(f);
        }
    }
    let fleet = Fleet {
        start_time,
        tenant_id: raw.tenant_id.unwrap_or_else(|| DEFAULT_TENANT.into()),
        client_id: raw.client_id.unwrap_or_else(|| DEFAULT_CLIENT.into()),
        client_secret: raw.client_secret,
        subscriptions,
        catalogue,
        images,
        durations,
        arm,
        clusters,
        faults,
        quotas,
        virtual_networks,
    };
    c.d.finish(fleet)
}

fn compile_catalogue(c: &mut Compiler, raw: &[Spanned<RawMinor>]) -> Vec<CatalogueMinor> {
    let mut out: Vec<CatalogueMinor> = Vec::new();
    for m in raw {
        let Ok(minor) = m.value.minor.value.parse::<MinorVersion>() else {
            c.d.at(
                &m.value.minor,
                format!("`{}` is not a minor version (e.g. 1.33)", m.value.minor.value),
            );
            continue;
        };
        if out
            .iter()
            .any(|o| o.minor == minor && o.regions.is_none() && m.value.regions.is_none())
        {
            c.d.at(&m.value.minor, format!("minor {minor} is listed twice"));
        }
        let mut patches = Vec::new();
        for p in &m.value.patches {
            if let Some(v) = c.version(p) {
                if v.minor_version() != minor {
                    c.d.at(p, format!("patch {v} does not belong to minor {minor}"));
                } else {
                    patches.push(v);
                }
            }
        }
        if m.value.patches.is_empty() {
            c.d.at(&m.value.minor, format!("minor {minor} lists no patches"));
        }
        patches.sort();
        patches.dedup();
        let end_of_support = m.value.end_of_support.as_ref().and_then(|s| c.date(s));
        out.push(CatalogueMinor {
            minor,
            patches,
            preview: m.value.preview,
            default: m.value.default,
            support_plans: m
                .value
                .support_plans
                .clone()
                .unwrap_or_else(|| vec!["KubernetesOfficial".into()]),
            end_of_support,
            regions: m.value.regions.as_ref().map(|r| r.iter().cloned().collect()),
        });
    }
    out.sort_by_key(|m| m.minor);
    out
}

fn compile_images(c: &mut Compiler, raw: &[Spanned<RawImageLine>]) -> Vec<ImageLine> {
    let mut out: Vec<ImageLine> = Vec::new();
    for l in raw {
        if out.iter().any(|o| o.os_sku.eq_ignore_ascii_case(&l.value.os_sku.value)) {
            c.d.at(
                &l.value.os_sku,
                format!("node images for os_sku `{}` are listed twice", l.value.os_sku.value),
            );
        }
        if l.value.family.value.is_empty() {
            c.d.at(&l.value.family, "family must not be empty");
        }
        let mut releases = Vec::new();
        for r in &l.value.releases {
            if crate::version::compare_image_versions(&r.value.version.value, "0") == std::cmp::Ordering::Equal
                || !r.value.version.value.split('.').all(|p| p.parse::<u64>().is_ok())
            {
                c.d.at(
                    &r.value.version,
                    format!(
                        "`{}` is not a node image version (e.g. 202411.12.0)",
                        r.value.version.value
                    ),
                );
            }
            let available = r.value.available.as_ref().and_then(|s| c.date(s));
            let mut regions = BTreeMap::new();
            for (region, day) in &r.value.regions {
                if let Some(d) = c.date(day) {
                    regions.insert(region.clone(), d);
                }
            }
            if r.value.available.is_none() && r.value.regions.is_empty() {
                c.d.at(
                    &r.value.version,
                    "a release needs `available` or `regions` (the day it reaches a region)",
                );
            }
            releases.push(ImageRelease {
                version: r.value.version.value.clone(),
                available,
                regions,
            });
        }
        releases.sort_by(|a, b| crate::version::compare_image_versions(&a.version, &b.version));
        out.push(ImageLine {
            os_sku: l.value.os_sku.value.clone(),
            family: l.value.family.value.clone(),
            releases,
        });
    }
    out
}

fn compile_durations(c: &mut Compiler, r: &RawDurations) -> Durations {
    let d = Durations::default();
    Durations {
        control_plane_upgrade: c.duration(&r.control_plane_upgrade, d.control_plane_upgrade),
        node_provision: c.duration(&r.node_provision, d.node_provision),
        node_reimage: c.duration(&r.node_reimage, d.node_reimage),
        node_delete: c.duration(&r.node_delete, d.node_delete),
        pod_schedule: c.duration(&r.pod_schedule, d.pod_schedule),
        pod_start: c.duration(&r.pod_start, d.pod_start),
        eviction_retry: c.duration(&r.eviction_retry, d.eviction_retry),
        reconcile: c.duration(&r.reconcile, d.reconcile),
        abort: c.duration(&r.abort, d.abort),
        node_ready_timeout: c.duration(&r.node_ready_timeout, d.node_ready_timeout),
        crash_loop_restart: c.duration(&r.crash_loop_restart, d.crash_loop_restart),
        poll_interval: c.duration(&r.poll_interval, d.poll_interval),
    }
}

fn compile_arm(c: &mut Compiler, r: &RawArm) -> ArmSettings {
    let d = ArmSettings::default();
    let page_size = match &r.page_size {
        Some(p) if p.value == 0 => {
            c.d.at(p, "page_size must be at least 1");
            d.page_size
        }
        Some(p) => p.value as usize,
        None => d.page_size,
    };
    let bucket = |b: &Option<RawBucket>, def: Bucket| {
        b.as_ref().map_or(def, |b| Bucket {
            capacity: b.bucket.max(1),
            per_second: if b.per_second > 0.0 {
                b.per_second
            } else {
                def.per_second
            },
        })
    };
    ArmSettings {
        page_size,
        reads: bucket(&r.reads, d.reads),
        writes: bucket(&r.writes, d.writes),
        token_lifetime: c.duration(&r.token_lifetime, d.token_lifetime),
    }
}

/// Checks each cluster's versions against the catalogue of its region.
/// Checks a cluster's version against the catalogue of its region.
fn check_cluster_version(c: &mut Compiler, at: Location, cl: &ClusterDef, cat: &[CatalogueMinor]) {
    let known = cat
        .iter()
        .any(|m| m.offered_in(&cl.location) && m.patches.contains(&cl.kubernetes_version));
    if !known && !cat.is_empty() {
        let msg = format!(
            "version {} is not in the catalogue for region {}",
            cl.kubernetes_version, cl.location
        );
        c.d.at_location(at, msg);
    }
}
