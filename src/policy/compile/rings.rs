//! Rings, waves, approvals, failure budgets, and the static check that no two rings name
//! the same cluster.

use super::super::raw::*;
use super::super::*;
use super::{Compiler, valid_ring_name};
use crate::yaml::Spanned;
use std::time::Duration;

impl Compiler {
    pub(super) fn rings(
        &mut self,
        rings: &Spanned<Vec<Spanned<RawRing>>>,
        on_gate_failure: OnGateFailure,
    ) -> Vec<Ring> {
        if rings.value.is_empty() {
            self.d.at(rings, "`rings` is empty: a policy needs at least one ring");
        }
        self.unique(rings.value.iter().map(|r| &r.value.name), "ring name");
        let compiled: Vec<Ring> = rings.value.iter().map(|r| self.ring(r, on_gate_failure)).collect();
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

    fn ring(&mut self, r: &Spanned<RawRing>, default_on_gate_failure: OnGateFailure) -> Ring {
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
        let on_gate_failure = raw
            .on_gate_failure
            .as_ref()
            .map_or(default_on_gate_failure, |o| self.on_gate_failure(o));
        Ring {
            name,
            selector,
            waves,
            soak,
            approval,
            failure_budget,
            on_gate_failure,
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
        let valid = r.expires_after.as_ref().map(|e| (e, self.valid_duration(e)));
        if let Some((raw, Some(Duration::ZERO))) = valid {
            self.d.at(raw, "expires_after must be longer than 0");
        }
        // An invalid expiry (reported) stands as none, as before.
        let expires_after = valid.map(|(_, e)| e.unwrap_or(Duration::ZERO));
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

    pub(super) fn on_gate_failure(&mut self, o: &Spanned<String>) -> OnGateFailure {
        match self.one_of(o, &["hold", "rollback"], "on_gate_failure") {
            Some("rollback") => OnGateFailure::Rollback,
            _ => OnGateFailure::Hold,
        }
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
}
