//! Raw policy -> [`Policy`], collecting every error with its position before giving up,
//! so that a user fixes a policy in one round instead of one error per run.

mod pools;
mod rings;
mod schedule;

use super::raw::*;
use super::*;
use crate::domain::duration::{format_duration, parse_duration};
use crate::domain::fleet::FleetSnapshot;
use crate::yaml::{Diagnostics, SourceErrors, Spanned};
use std::collections::{BTreeMap, BTreeSet};

/// Parses and validates policy YAML (`file` names it in errors).
pub fn compile(file: &str, text: &str) -> Result<Policy, SourceErrors> {
    compile_with_snapshot(file, text, None)
}

/// Like [`compile`], and also checks the policy against a fleet snapshot: no cluster in
/// two rings, every cluster a wave names is in its ring, every ring cluster in a wave.
pub fn compile_with_snapshot(file: &str, text: &str, snapshot: Option<&FleetSnapshot>) -> Result<Policy, SourceErrors> {
    // Unknown fields are errors, but checking goes on without them: one run shows every
    // problem (an unknown field and a bad cron elsewhere are both reported).
    let (raw, unknown) = crate::yaml::parse_reporting_unknown::<RawPolicy>(file, text)?;
    crate::yaml::with_unknown(compile_raw(file, &raw, snapshot), unknown)
}

/// Validates a parsed document.
pub fn compile_raw(file: &str, raw: &RawPolicy, snapshot: Option<&FleetSnapshot>) -> Result<Policy, SourceErrors> {
    let mut c = Compiler {
        d: Diagnostics::new(file),
    };
    if raw.name.value.trim().is_empty() {
        c.d.at(&raw.name, "policy `name` is empty");
    }
    let fleet = c.fleet(&raw.fleet);
    let pools = c.pools(raw.pools.as_ref());
    let target = c.target(&raw.target);
    let on_gate_failure = raw
        .on_gate_failure
        .as_ref()
        .map_or(OnGateFailure::default(), |o| c.on_gate_failure(o));
    let rings = c.rings(&raw.rings, on_gate_failure);
    let steps = c.steps(&raw.steps);
    if target.channel == Channel::NodeImage && !steps.node_image {
        c.d.at(
            &raw.target.value.channel,
            "channel `node-image` with `steps.node_image: false` leaves nothing to do",
        );
    }
    let gates = c.gates(&raw.gates);
    let ring_names: BTreeSet<&str> = raw.rings.value.iter().map(|r| r.value.name.value.as_str()).collect();
    let schedule = c.schedule(&raw.schedule, &ring_names);
    let policy = Policy {
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        fleet,
        pools,
        target,
        rings,
        steps,
        gates,
        schedule,
        preflight: c.preflight(&raw.preflight),
        on_busy: raw
            .on_busy
            .as_ref()
            .map_or(OnBusy::default(), |o| match c.one_of(o, &["wait", "skip"], "on_busy") {
                Some("skip") => OnBusy::Skip,
                _ => OnBusy::Wait,
            }),
        priority: raw.priority.unwrap_or(0),
    };
    if let Some(s) = snapshot {
        c.against_snapshot(raw, &policy, s);
    }
    c.d.finish(policy)
}

pub(super) struct Compiler {
    pub(super) d: Diagnostics,
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_pool_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=12).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

pub(super) fn valid_ring_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Compiler {
    /// A duration, at most [`MAX_DURATION`]; an invalid one is reported and `default`
    /// stands in for it (so that checking goes on).
    pub(super) fn duration(&mut self, s: Option<&Spanned<String>>, default: Duration) -> Duration {
        s.and_then(|s| self.valid_duration(s)).unwrap_or(default)
    }

    /// A duration, at most [`MAX_DURATION`]; `None` (reported) when invalid.
    pub(super) fn valid_duration(&mut self, s: &Spanned<String>) -> Option<Duration> {
        let why = " (a longer wait is a typo, and no plan looks that far ahead)";
        crate::domain::duration::parse_bounded(&s.value, "a policy", why)
            .map_err(|e| self.d.at(s, e))
            .ok()
    }

    pub(super) fn ratio(&mut self, s: Option<&Spanned<f64>>, default: f64, field: &str) -> f64 {
        let Some(s) = s else { return default };
        if (0.0..=1.0).contains(&s.value) {
            s.value
        } else {
            self.d.at(s, format!("{field} {} is outside 0..1", s.value));
            default
        }
    }

    pub(super) fn date(&mut self, s: &Spanned<String>) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&s.value, "%Y-%m-%d")
            .inspect_err(|_| {
                self.d
                    .at(s, format!("`{}` is not a date (expected YYYY-MM-DD)", s.value))
            })
            .ok()
    }

    pub(super) fn version(&mut self, s: &Spanned<String>) -> Option<VersionSpec> {
        s.value
            .parse::<VersionSpec>()
            .inspect_err(|_| {
                self.d.at(
                    s,
                    format!(
                        "`{}` is not a Kubernetes version (expected a minor such as 1.33 or a patch such as 1.33.2)",
                        s.value
                    ),
                )
            })
            .ok()
    }

    pub(super) fn one_of<'a>(&mut self, s: &Spanned<String>, allowed: &[&'a str], field: &str) -> Option<&'a str> {
        let found = allowed.iter().find(|a| a.eq_ignore_ascii_case(&s.value)).copied();
        if found.is_none() {
            self.d.at(
                s,
                format!("{field} `{}` is not one of: {}", s.value, allowed.join(", ")),
            );
        }
        found
    }

    /// Reports the second and later occurrences of each name.
    pub(super) fn unique<'a>(&mut self, names: impl IntoIterator<Item = &'a Spanned<String>>, what: &str) {
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for n in names {
            let key = n.value.to_ascii_lowercase();
            match seen.get(&key) {
                Some(line) => self
                    .d
                    .at(n, format!("duplicate {what}: `{}` (first on line {line})", n.value)),
                None => {
                    seen.insert(key, n.referenced.line());
                }
            }
        }
    }

    pub(super) fn selector(&mut self, s: &Spanned<RawSelector>, what: &str) -> Selector {
        let r = &s.value;
        let mut out = Selector::default();
        for (k, v) in &r.tags {
            if k.trim().is_empty() {
                self.d.at(v, format!("{what}: empty tag name"));
            }
            out.tags.insert(k.to_ascii_lowercase(), v.value.clone());
        }
        for (list, field, target) in [
            (&r.resource_groups, "resource group", &mut out.resource_groups),
            (&r.names, "cluster name", &mut out.names),
        ] {
            self.unique(list.iter(), &format!("{what} {field}"));
            for p in list {
                if p.value.trim().is_empty() {
                    self.d.at(p, format!("{what}: empty {field}"));
                }
                target.push(p.value.clone());
            }
        }
        self.unique(r.subscriptions.iter(), &format!("{what} subscription"));
        for sub in &r.subscriptions {
            if !is_guid(&sub.value) {
                self.d
                    .at(sub, format!("`{}` is not a subscription id (a GUID)", sub.value));
            }
            out.subscriptions.push(sub.value.clone());
        }
        if out.is_empty() {
            self.d.at(s, format!("{what} is empty and would match every cluster"));
        }
        out
    }

    fn fleet(&mut self, f: &RawFleet) -> FleetSelection {
        self.unique(f.subscriptions.iter(), "subscription");
        for s in &f.subscriptions {
            if !is_guid(&s.value) {
                self.d.at(s, format!("`{}` is not a subscription id (a GUID)", s.value));
            }
        }
        FleetSelection {
            subscriptions: f.subscriptions.iter().map(|s| s.value.clone()).collect(),
            include: f
                .include
                .iter()
                .map(|s| self.selector(s, "fleet.include selector"))
                .collect(),
            exclude: f
                .exclude
                .iter()
                .map(|s| self.selector(s, "fleet.exclude selector"))
                .collect(),
        }
    }

    fn target(&mut self, t: &Spanned<RawTarget>) -> Target {
        let r = &t.value;
        let channels = ["patch", "stable", "rapid", "node-image", "pinned"];
        let name = self.one_of(&r.channel, &channels, "channel");
        let version = r.version.as_ref().and_then(|v| self.version(v));
        let channel = match (name, &r.version) {
            (Some("pinned"), None) => {
                self.d.at(
                    &r.channel,
                    "channel `pinned` needs a `version` (e.g. \"1.33\" or \"1.33.2\")",
                );
                Channel::Stable
            }
            (Some("pinned"), Some(_)) => version.map_or(Channel::Stable, Channel::Pinned),
            (Some(other), Some(v)) => {
                self.d
                    .at(v, format!("`version` is only for channel `pinned`, not `{other}`"));
                Channel::Stable
            }
            (Some("patch"), None) => Channel::Patch,
            (Some("rapid"), None) => Channel::Rapid,
            (Some("node-image"), None) => Channel::NodeImage,
            _ => Channel::Stable,
        };
        let allow: Vec<VersionSpec> = r.allow.iter().filter_map(|v| self.version(v)).collect();
        let deny: Vec<VersionSpec> = r.deny.iter().filter_map(|v| self.version(v)).collect();
        if channel == Channel::NodeImage && !(r.allow.is_empty() && r.deny.is_empty()) {
            let at = r.allow.first().or(r.deny.first()).expect("one is non-empty");
            self.d.at(
                at,
                "`allow`/`deny` have no effect with channel `node-image` (it changes no version)",
            );
        }
        for (spec, raw) in deny.iter().zip(&r.deny) {
            if allow.contains(spec) {
                self.d.at(raw, format!("version `{spec}` is both allowed and denied"));
            }
        }
        if let (Channel::Pinned(p), Some(at)) = (channel, &r.version) {
            let covered = |list: &[VersionSpec]| {
                list.iter().any(|s| match (s, p) {
                    (VersionSpec::Minor(m), pv) => pv.minor_version() == *m,
                    (VersionSpec::Exact(e), VersionSpec::Exact(pv)) => *e == pv,
                    (VersionSpec::Exact(_), VersionSpec::Minor(_)) => false,
                })
            };
            if covered(&deny) {
                self.d.at(at, format!("pinned version `{p}` is denied by `deny`"));
            }
            if !allow.is_empty() && !allow.iter().any(|a| a.minor_version() == p.minor_version()) {
                self.d.at(at, format!("pinned version `{p}` is not in `allow`"));
            }
        }
        let node_image = match r
            .node_image
            .as_ref()
            .map(|s| self.one_of(s, &["latest", "consistent"], "node_image"))
        {
            Some(Some("consistent")) => NodeImageMode::Consistent,
            _ => NodeImageMode::Latest,
        };
        Target {
            channel,
            allow_preview: r.allow_preview,
            allow,
            deny,
            node_image,
        }
    }

    fn preflight(&mut self, p: &RawPreflight) -> Preflight {
        let d = Preflight::default();
        let on_block = match p
            .on_block
            .as_ref()
            .map(|o| self.one_of(o, &["skip", "halt", "wait"], "on_block"))
        {
            Some(Some("halt")) => OnBlock::Halt,
            Some(Some("wait")) => OnBlock::Wait,
            _ => OnBlock::Skip,
        };
        if let (Some(w), false) = (&p.wait_up_to, on_block == OnBlock::Wait) {
            self.d.at(w, "wait_up_to only applies to on_block: wait");
        }
        Preflight {
            enabled: p.enabled.unwrap_or(d.enabled),
            on_block,
            wait_up_to: self.duration(p.wait_up_to.as_ref(), d.wait_up_to),
            allow_force_upgrade: p.allow_force_upgrade.unwrap_or(d.allow_force_upgrade),
        }
    }

    fn steps(&mut self, s: &RawSteps) -> Steps {
        self.unique(s.pool_order.iter(), "pool in pool_order");
        for p in &s.pool_order {
            if !valid_pool_name(&p.value) {
                self.d.at(
                    p,
                    format!("`{}` is not an AKS pool name (^[a-z][a-z0-9]{{0,11}}$)", p.value),
                );
            }
        }
        let max_surge = s.max_surge.as_ref().and_then(|m| {
            let ok = match m.value.strip_suffix('%') {
                Some(p) => p.parse::<u32>().is_ok_and(|v| (1..=100).contains(&v)),
                None => m.value.parse::<u32>().is_ok_and(|v| v >= 1),
            };
            if !ok {
                self.d.at(
                    m,
                    format!(
                        "max_surge `{}` is not a count (>= 1) or a percentage (1%..100%)",
                        m.value
                    ),
                );
            }
            ok.then(|| m.value.clone())
        });
        let drain_timeout_minutes = s.drain_timeout.as_ref().and_then(|d| {
            // Its own bound (24h) is much tighter than MAX_DURATION: one error, not two.
            let v = match parse_duration(&d.value) {
                Ok(v) => v,
                Err(e) => {
                    self.d.at(d, e.to_string());
                    return None;
                }
            };
            let secs = v.as_secs();
            if v.subsec_nanos() != 0 || !secs.is_multiple_of(60) || !(1..=1440).contains(&(secs / 60)) {
                self.d.at(
                    d,
                    format!(
                        "drain_timeout `{}` must be whole minutes from 1m to 24h (AKS drainTimeoutInMinutes)",
                        d.value
                    ),
                );
                return None;
            }
            Some((secs / 60) as u32)
        });
        Steps {
            pool_order: s.pool_order.iter().map(|p| p.value.clone()).collect(),
            pool_soak: self.duration(s.pool_soak.as_ref(), Duration::ZERO),
            node_image: s.node_image.unwrap_or(true),
            max_surge,
            drain_timeout_minutes,
        }
    }

    fn gates(&mut self, g: &RawGates) -> Gates {
        let pr = g.pod_readiness.as_ref();
        let r = pr.map(|p| &p.value);
        let min_ready_ratio = self.ratio(r.and_then(|r| r.min_ready_ratio.as_ref()), 1.0, "min_ready_ratio");
        let settle = self.duration(r.and_then(|r| r.settle.as_ref()), Duration::from_secs(60));
        let timeout = self.duration(r.and_then(|r| r.timeout.as_ref()), Duration::from_secs(15 * 60));
        if let Some(t) = r.and_then(|r| r.timeout.as_ref())
            && timeout <= settle
        {
            self.d.at(
                t,
                format!(
                    "timeout {} must be longer than settle {}",
                    format_duration(timeout),
                    format_duration(settle)
                ),
            );
        }
        let (include, exclude) = r.map_or((&[][..], &[][..]), |r| {
            (&r.include_namespaces[..], &r.exclude_namespaces[..])
        });
        self.unique(include.iter(), "namespace in include_namespaces");
        self.unique(exclude.iter(), "namespace in exclude_namespaces");
        for n in exclude {
            if include.iter().any(|i| i.value == n.value) {
                self.d
                    .at(n, format!("namespace `{}` is both included and excluded", n.value));
            }
        }
        Gates {
            pod_readiness: PodReadiness {
                min_ready_ratio,
                include_namespaces: include.iter().map(|n| n.value.clone()).collect(),
                exclude_namespaces: exclude.iter().map(|n| n.value.clone()).collect(),
                settle,
                timeout,
            },
            nodes_ready: g.nodes_ready.unwrap_or(true),
            no_regression: g.no_regression.unwrap_or(true),
            regression_tolerance: self.ratio(g.regression_tolerance.as_ref(), 0.0, "regression_tolerance"),
        }
    }
}
