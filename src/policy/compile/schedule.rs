//! The schedule (time zone, start cron, own windows, blackouts) and the checks that need
//! a fleet snapshot (ring overlaps, wave membership).

use super::super::raw::*;
use super::super::*;
use super::Compiler;
use crate::domain::fleet::FleetSnapshot;
use crate::schedule::{day_span, parse_time_zone};
use crate::yaml::Spanned;
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

impl Compiler {
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

    pub(super) fn schedule(&mut self, s: &RawSchedule, rings: &BTreeSet<&str>) -> Schedule {
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
            let valid = self.valid_duration(&r.duration);
            if valid == Some(Duration::ZERO) {
                self.d.at(&r.duration, "window duration must be longer than 0");
            }
            let duration = valid.unwrap_or(Duration::ZERO);
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
    pub(super) fn against_snapshot(&mut self, raw: &RawPolicy, policy: &Policy, snapshot: &FleetSnapshot) {
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
