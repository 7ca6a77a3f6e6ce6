//! Faults: the compiled shape of a fleet file's `faults` (what goes wrong, where, and
//! in which window of simulated time) and their compilation from the raw document, kept
//! together so a fault kind's model and its checks sit side by side.

use super::compile::Compiler;
use super::raw::RawFault;
use std::collections::BTreeSet;
use std::time::Duration;
use yaml_spans::Spanned;

/// Which operation an `operation_fails` fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    ControlPlane,
    Pool,
    NodeImage,
}

/// A fault, with the simulated window (offsets from start) in which it is active.
#[derive(Debug, Clone)]
pub struct Fault {
    pub what: FaultKind,
    pub from: Duration,
    pub to: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    OperationFails {
        cluster: String,
        operation: OpKind,
        pool: Option<String>,
        code: String,
        message: String,
    },
    PodsNeverReady {
        cluster: String,
        version: crate::version::VersionSpec,
        /// Only pods of this namespace (default: every namespace).
        namespace: Option<String>,
    },
    NodesNotReady {
        cluster: String,
        pool: Option<String>,
        version: Option<crate::version::VersionSpec>,
    },
    PdbBlocksDrain {
        cluster: String,
        workload: String,
    },
    ThrottleStorm {
        subscription: Option<String>,
    },
    ServerErrors {
        rate: f64,
        status: ServerErrorKind,
    },
    ApiUnreachable {
        cluster: String,
    },
    AutoUpgrade {
        cluster: String,
        channel: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    Status500,
    Status503,
    Drop,
}

impl Fault {
    pub fn active_at(&self, since_start: Duration) -> bool {
        since_start >= self.from && self.to.is_none_or(|to| since_start < to)
    }
}

pub(super) fn compile_fault(c: &mut Compiler, f: &Spanned<RawFault>, clusters: &BTreeSet<&str>) -> Option<Fault> {
    let r = &f.value;
    let from = c.duration(&r.from, Duration::ZERO);
    let to = r.to.as_ref().map(|_| c.duration(&r.to, Duration::ZERO));
    let cluster = |c: &mut Compiler| -> Option<String> {
        match &r.cluster {
            None => {
                c.d.at(&r.kind, format!("fault `{}` needs `cluster`", r.kind.value));
                None
            }
            Some(name) if !clusters.contains(name.value.as_str()) => {
                c.d.at(
                    name,
                    format!("fault names cluster `{}`, which the fleet does not have", name.value),
                );
                None
            }
            Some(name) => Some(name.value.clone()),
        }
    };
    let spec = |c: &mut Compiler, v: &Option<Spanned<String>>| -> Option<crate::version::VersionSpec> {
        let v = v.as_ref()?;
        match v.value.parse() {
            Ok(s) => Some(s),
            Err(e) => {
                c.d.at(v, format!("{e}"));
                None
            }
        }
    };
    let what = match r.kind.value.as_str() {
        "operation_fails" => {
            let operation = match c
                .one_of(
                    &r.operation,
                    &["control_plane", "pool", "node_image"],
                    "pool",
                    "operation",
                )
                .as_str()
            {
                "control_plane" => OpKind::ControlPlane,
                "node_image" => OpKind::NodeImage,
                _ => OpKind::Pool,
            };
            FaultKind::OperationFails {
                cluster: cluster(c)?,
                operation,
                pool: r.pool.clone(),
                code: r.code.clone().unwrap_or_else(|| "UpgradeFailed".into()),
                message: r
                    .message
                    .clone()
                    .unwrap_or_else(|| "The operation failed (injected fault).".into()),
            }
        }
        "pods_never_ready" => {
            let cl = cluster(c)?;
            let Some(version) = spec(c, &r.version) else {
                c.d.at(&r.kind, "fault `pods_never_ready` needs `version`");
                return None;
            };
            FaultKind::PodsNeverReady {
                cluster: cl,
                version,
                namespace: r.namespace.clone(),
            }
        }
        "nodes_not_ready" => FaultKind::NodesNotReady {
            cluster: cluster(c)?,
            pool: r.pool.clone(),
            version: spec(c, &r.version),
        },
        "pdb_blocks_drain" => {
            let cl = cluster(c)?;
            let Some(workload) = r.workload.clone() else {
                c.d.at(&r.kind, "fault `pdb_blocks_drain` needs `workload`");
                return None;
            };
            FaultKind::PdbBlocksDrain { cluster: cl, workload }
        }
        "throttle_storm" => FaultKind::ThrottleStorm {
            subscription: r.subscription.clone(),
        },
        "server_errors" => {
            let rate = r.rate.as_ref().map_or(0.05, |r| r.value);
            if let Some(rs) = &r.rate
                && !(0.0..=1.0).contains(&rs.value)
            {
                c.d.at(rs, format!("rate {} is outside 0..1", rs.value));
            }
            let status = match c.one_of(&r.status, &["500", "503", "drop"], "500", "status").as_str() {
                "503" => ServerErrorKind::Status503,
                "drop" => ServerErrorKind::Drop,
                _ => ServerErrorKind::Status500,
            };
            FaultKind::ServerErrors { rate, status }
        }
        "api_unreachable" => FaultKind::ApiUnreachable { cluster: cluster(c)? },
        "auto_upgrade" => FaultKind::AutoUpgrade {
            cluster: cluster(c)?,
            channel: r.channel.clone().unwrap_or_else(|| "patch".into()),
        },
        other => {
            c.d.at(
                &r.kind,
                format!("unknown fault kind `{other}` (operation_fails, pods_never_ready, nodes_not_ready, pdb_blocks_drain, throttle_storm, server_errors, api_unreachable, auto_upgrade)"),
            );
            return None;
        }
    };
    Some(Fault { what, from, to })
}
