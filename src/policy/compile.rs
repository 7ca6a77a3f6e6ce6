//! Raw policy -> [`Policy`], collecting every error with its position before giving up,
//! so that a user fixes a policy in one round instead of one error per run.

use super::raw::*;
use super::*;
use crate::domain::duration::{format_duration, parse_duration};
use crate::domain::fleet::FleetSnapshot;
use crate::schedule::{day_span, parse_time_zone};
use crate::yaml::{Diagnostics, SourceErrors, Spanned};
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};

/// Parses and validates policy YAML (`file` names it in errors).
pub fn compile(file: &str, text: &str) -> Result<Policy, SourceErrors> {
    compile_with_snapshot(file, text, None)
}

/// Like [`compile`], and also checks the policy against a fleet snapshot: no cluster in
/// two rings, every cluster a wave names is in its ring, every ring cluster in a wave.
pub fn compile_with_snapshot(file: &str, text: &str, snapshot: Option<&FleetSnapshot>) -> Result<Policy, SourceErrors> {
    let raw = crate::yaml::parse::<RawPolicy>(file, text)?;
    compile_raw(file, &raw, snapshot)
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
    let target = c.target(&raw.target);
    let rings = c.rings(&raw.rings);
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
        target,
        rings,
        steps,
        gates,
        schedule,
    };
    if let Some(s) = snapshot {
        c.against_snapshot(raw, &policy, s);
    }
    c.d.finish(policy)
}

struct Compiler {
    d: Diagnostics,
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

fn valid_ring_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Compiler {
    fn duration(&mut self, s: Option<&Spanned<String>>, default: Duration) -> Duration {
        let Some(s) = s else { return default };
        parse_duration(&s.value).unwrap_or_else(|e| {
            self.d.at(s, e.to_string());
            default
        })
    }

    fn ratio(&mut self, s: Option<&Spanned<f64>>, default: f64, field: &str) -> f64 {
        let Some(s) = s else { return default };
        if (0.0..=1.0).contains(&s.value) {
            s.value
        } else {
            self.d.at(s, format!("{field} {} is outside 0..1", s.value));
            default
        }
    }

    fn date(&mut self, s: &Spanned<String>) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&s.value, "%Y-%m-%d")
            .inspect_err(|_| {
                self.d
                    .at(s, format!("`{}` is not a date (expected YYYY-MM-DD)", s.value))
            })
            .ok()
    }

    fn version(&mut self, s: &Spanned<String>) -> Option<VersionSpec> {
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

    fn one_of<'a>(&mut self, s: &Spanned<String>, allowed: &[&'a str], field: &str) -> Option<&'a str> {
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
    fn unique<'a>(&mut self, names: impl IntoIterator<Item = &'a Spanned<String>>, what: &str) {
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

    fn selector(&mut self, s: &Spanned<RawSelector>, what: &str) -> Selector {
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

    fn rings(&mut self, rings: &Spanned<Vec<Spanned<RawRing>>>) -> Vec<Ring> {
        if rings.value.is_empty() {
            self.d.at(rings, "`rings` is empty: a policy needs at least one ring");
        }
        self.unique(rings.value.iter().map(|r| &r.value.name), "ring name");
        let compiled: Vec<Ring> = rings.value.iter().map(|r| self.ring(r)).collect();
        // Statically certain overlaps: two rings naming the same cluster, with nothing
        // else in their selectors keeping them apart.
        for (j, b) in compiled.iter().enumerate() {
            for a in &compiled[..j] {
                let (Some(na), Some(nb)) = (a.selector.explicit_names(), b.selector.explicit_names()) else {
                    continue;
                };
                let shared: Vec<&String> = na.intersection(&nb).collect();
                if let Some(first) = shared.first()
                    && !a.selector.certainly_disjoint(&Selector {
                        names: Vec::new(),
                        ..b.selector.clone()
                    })
                {
                    let line = rings
                        .value
                        .iter()
                        .find(|r| r.value.name.value == a.name)
                        .map_or(0, |r| r.referenced.line());
                    self.d.at(
                        &rings.value[j].value.selector,
                        format!(
                            "ring `{}` selects cluster `{first}`, which ring `{}` (line {line}) also selects; a cluster belongs to one ring",
                            b.name, a.name
                        ),
                    );
                }
            }
        }
        compiled
    }

    fn ring(&mut self, r: &Spanned<RawRing>) -> Ring {
        let raw = &r.value;
        let name = raw.name.value.clone();
        if !valid_ring_name(&name) {
            self.d.at(
                &raw.name,
                format!("ring name `{name}` may only hold letters, digits, `-` and `_`"),
            );
        }
        let selector = self.selector(&raw.selector, &format!("ring `{name}` selector"));
        let waves = self.waves(raw, &selector);
        let soak = self.duration(raw.soak.as_ref(), Duration::ZERO);
        let approval = raw.approval.as_ref().and_then(|a| self.approval(a));
        let failure_budget = raw.failure_budget.as_ref().map_or(
            FailureBudget {
                on_failure: OnFailure::Halt,
                max_failed_clusters: 0,
            },
            |f| self.failure_budget(f),
        );
        Ring {
            name,
            selector,
            waves,
            soak,
            approval,
            failure_budget,
        }
    }

    fn waves(&mut self, raw: &RawRing, selector: &Selector) -> Vec<Wave> {
        if raw.waves.is_empty() {
            return vec![Wave {
                name: "all".into(),
                members: WaveMembers::MaxParallel(1),
            }];
        }
        self.unique(
            raw.waves.iter().map(|w| &w.value.name),
            &format!("wave name in ring `{}`", raw.name.value),
        );
        self.unique(
            raw.waves.iter().flat_map(|w| &w.value.clusters),
            &format!("cluster in the waves of ring `{}`", raw.name.value),
        );
        let explicit = selector.explicit_names();
        let last = raw.waves.len() - 1;
        let mut out = Vec::new();
        for (i, w) in raw.waves.iter().enumerate() {
            let v = &w.value;
            let members = match (&v.max_parallel, v.clusters.is_empty()) {
                (Some(_), false) => {
                    self.d.at(
                        w,
                        format!(
                            "wave `{}` has both `clusters` and `max_parallel`; give one",
                            v.name.value
                        ),
                    );
                    continue;
                }
                (None, true) => {
                    self.d
                        .at(w, format!("wave `{}` needs `clusters` or `max_parallel`", v.name.value));
                    continue;
                }
                (Some(n), true) => {
                    if n.value == 0 {
                        self.d.at(n, "max_parallel must be at least 1");
                    }
                    if i != last {
                        self.d.at(
                            w,
                            format!(
                                "wave `{}` takes the ring's remaining clusters (max_parallel), so it must be the last wave",
                                v.name.value
                            ),
                        );
                    }
                    WaveMembers::MaxParallel(n.value.max(1))
                }
                (None, false) => {
                    if let Some(names) = &explicit {
                        for c in &v.clusters {
                            if !names.contains(&c.value.to_ascii_lowercase()) {
                                self.d.at(
                                    c,
                                    format!(
                                        "wave cluster `{}` is not among ring `{}`'s selector names",
                                        c.value, raw.name.value
                                    ),
                                );
                            }
                        }
                    }
                    WaveMembers::Clusters(v.clusters.iter().map(|c| c.value.clone()).collect())
                }
            };
            out.push(Wave {
                name: v.name.value.clone(),
                members,
            });
        }
        out
    }

    fn approval(&mut self, a: &Spanned<RawApproval>) -> Option<Approval> {
        let r = &a.value;
        self.unique(r.approvers.iter(), "approver group");
        for g in &r.approvers {
            if g.value.trim().is_empty() {
                self.d.at(g, "empty approver group");
            }
        }
        let expires_after = r.expires_after.as_ref().map(|e| self.duration(Some(e), Duration::ZERO));
        if let (Some(e), Some(raw)) = (expires_after, &r.expires_after)
            && e.is_zero()
            && parse_duration(&raw.value).is_ok()
        {
            self.d.at(raw, "expires_after must be longer than 0");
        }
        if r.required == Some(false) {
            if !r.approvers.is_empty() || r.expires_after.is_some() {
                self.d.at(
                    a,
                    "approval is not required but lists approvers or an expiry; remove them or set required: true",
                );
            }
            return None;
        }
        if r.approvers.is_empty() {
            self.d.at(
                a,
                "approval is required but no approver groups are listed (`approvers`)",
            );
        }
        Some(Approval {
            approvers: r.approvers.iter().map(|g| g.value.clone()).collect(),
            expires_after,
        })
    }

    fn failure_budget(&mut self, f: &Spanned<RawFailureBudget>) -> FailureBudget {
        let r = &f.value;
        let on_failure = match self.one_of(&r.on_failure, &["halt", "skip-and-continue"], "on_failure") {
            Some("skip-and-continue") => OnFailure::SkipAndContinue,
            _ => OnFailure::Halt,
        };
        let max = r.max_failed_clusters.as_ref().map_or(0, |m| m.value);
        if let (OnFailure::Halt, Some(m)) = (on_failure, &r.max_failed_clusters) {
            self.d.at(
                m,
                "max_failed_clusters only applies to on_failure: skip-and-continue (halt stops at the first failure)",
            );
        }
        FailureBudget {
            on_failure,
            max_failed_clusters: max,
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
            let v = self.duration(Some(d), Duration::ZERO);
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

    fn ring_refs(&mut self, rings: &[Spanned<String>], known: &BTreeSet<&str>) -> Vec<String> {
        for r in rings {
            if !known.contains(r.value.as_str()) {
                let list: Vec<&str> = known.iter().copied().collect();
                self.d
                    .at(r, format!("unknown ring `{}` (rings: {})", r.value, list.join(", ")));
            }
        }
        rings.iter().map(|r| r.value.clone()).collect()
    }

    fn schedule(&mut self, s: &RawSchedule, rings: &BTreeSet<&str>) -> Schedule {
        let tz = match &s.time_zone {
            None => chrono_tz::UTC,
            Some(z) => parse_time_zone(&z.value).unwrap_or_else(|e| {
                self.d.at(z, e.to_string());
                chrono_tz::UTC
            }),
        };
        let start = s.start.as_ref().and_then(|c| {
            CronSchedule::parse(&c.value, tz)
                .inspect_err(|e| self.d.at(c, e.to_string()))
                .ok()
        });
        self.unique(s.windows.iter().map(|w| &w.value.name), "window name");
        let mut windows = Vec::new();
        for w in &s.windows {
            let r = &w.value;
            let cron = CronSchedule::parse(&r.cron.value, tz)
                .inspect_err(|e| self.d.at(&r.cron, e.to_string()))
                .ok();
            let duration = self.duration(Some(&r.duration), Duration::ZERO);
            if duration.is_zero() && parse_duration(&r.duration.value).is_ok() {
                self.d.at(&r.duration, "window duration must be longer than 0");
            }
            let ring_list = self.ring_refs(&r.rings, rings);
            if let Some(cron) = cron {
                windows.push(OwnWindow {
                    name: r.name.value.clone(),
                    window: CronWindow { cron, duration },
                    rings: ring_list,
                });
            }
        }
        self.unique(s.blackouts.iter().map(|b| &b.value.name), "blackout name");
        let mut blackouts = Vec::new();
        for b in &s.blackouts {
            let r = &b.value;
            let from = self.date(&r.from);
            let to = r.to.as_ref().map_or(from, |t| self.date(t));
            let ring_list = self.ring_refs(&r.rings, rings);
            if let (Some(from), Some(to)) = (from, to) {
                if to < from {
                    self.d.at(
                        r.to.as_ref().unwrap_or(&r.from),
                        format!("blackout ends ({to}) before it starts ({from})"),
                    );
                    continue;
                }
                blackouts.push(Blackout {
                    name: r.name.value.clone(),
                    from,
                    to,
                    span: day_span(tz, from, to),
                    rings: ring_list,
                });
            }
        }
        Schedule {
            time_zone: tz,
            start,
            respect_aks_maintenance: s.respect_aks_maintenance.unwrap_or(true),
            windows,
            blackouts,
        }
    }

    /// Checks that need the fleet: ring overlaps and wave membership.
    fn against_snapshot(&mut self, raw: &RawPolicy, policy: &Policy, snapshot: &FleetSnapshot) {
        let ring_at = |name: &str| {
            raw.rings
                .value
                .iter()
                .find(|r| r.value.name.value == name)
                .map_or(Location::UNKNOWN, |r| r.value.selector.referenced)
        };
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut clusters: Vec<_> = snapshot.clusters.iter().collect();
        clusters.sort_by(|a, b| a.id.cmp(&b.id));
        for c in clusters {
            if policy.fleet.membership(c) != Membership::In {
                continue;
            }
            let matched: Vec<&Ring> = policy.rings.iter().filter(|r| r.selector.matches(c)).collect();
            if let [first, rest @ ..] = &matched[..] {
                for r in rest {
                    self.d.at_location(
                        ring_at(&r.name),
                        format!("ring `{}` selects cluster `{}`, which ring `{}` also selects; a cluster belongs to one ring", r.name, c.id, first.name),
                    );
                }
                members.entry(first.name.as_str()).or_default().push(c.id.name.as_str());
            }
        }
        for (ring, raw_ring) in policy.rings.iter().zip(&raw.rings.value) {
            let names = members.get(ring.name.as_str()).cloned().unwrap_or_default();
            let in_waves: BTreeSet<String> = ring
                .waves
                .iter()
                .filter_map(|w| match &w.members {
                    WaveMembers::Clusters(cs) => Some(cs.iter().map(|c| c.to_ascii_lowercase())),
                    WaveMembers::MaxParallel(_) => None,
                })
                .flatten()
                .collect();
            for w in &raw_ring.value.waves {
                for c in &w.value.clusters {
                    if !names.iter().any(|n| n.eq_ignore_ascii_case(&c.value)) {
                        self.d.at(
                            c,
                            format!(
                                "wave cluster `{}` is not in ring `{}` in the fleet snapshot",
                                c.value, ring.name
                            ),
                        );
                    }
                }
            }
            let has_rest = ring
                .waves
                .iter()
                .any(|w| matches!(w.members, WaveMembers::MaxParallel(_)));
            if !has_rest {
                for n in names.iter().filter(|n| !in_waves.contains(&n.to_ascii_lowercase())) {
                    self.d.at_location(
                        ring_at(&ring.name),
                        format!("cluster `{n}` is in ring `{}` but in none of its waves (add a last wave with max_parallel)", ring.name),
                    );
                }
            }
        }
    }
}
