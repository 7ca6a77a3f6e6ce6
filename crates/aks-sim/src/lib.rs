//! The AKS fleet simulator: ARM and each cluster's Kubernetes API over real HTTP(S),
//! on a virtual clock, with faults. The embedded default of ringmaster, its demo and
//! its test bed.
//!
//! # Node pool rollback
//!
//! As AKS's "Roll back node pool versions" (`roll-back-node-pool-version.md`) and
//! api-version 2026-10-01 describe it:
//!
//! - Each pool upgrade that ends cleanly (a version upgrade from a pool PUT, a cluster PUT
//!   or the auto-upgrader, or a node image upgrade) remembers the (Kubernetes version, node
//!   image) pair the pool left, stamped with the simulated time it ended
//!   (`world::Pool::remember`): newest first, one entry per pair. One that ends with
//!   quarantined nodes records nothing.
//! - The pool's upgrade profile serves them as `properties.recentlyUsedVersions`
//!   (`{orchestratorVersion, nodeImageVersion, timestamp}`, `[]` when none): those left at
//!   most 7 days ago ("available only for 7 days after the upgrade completed") whose
//!   version the region still offers ("If the recorded Kubernetes version is no longer
//!   supported by AKS, no rollback target is returned"); `world::World::rollback_targets`.
//! - A pool PUT whose `properties.nodeImageVersion` names another image than the pool's
//!   ("Setting this value triggers an agentPool rollback. Only values from
//!   `recentlyUsedVersions` are allowed") asks for a rollback (`arm/agent_pools.rs`,
//!   `rollback_request`). It is refused (400) unless it is a served entry's image and
//!   `orchestratorVersion`, if sent, is that entry's version or minor (`InvalidParameter`,
//!   message modelled on the article's one quoted error; the code is UNVERIFIED); while
//!   the cluster's Kubernetes auto-upgrade channel is set ("must be disabled before a
//!   rollback"; `OperationNotAllowed`, UNVERIFIED); when the old version would break the
//!   skew against the control plane (`NodePoolMcVersionIncompatible`); and as any
//!   upgrade: 409 while an operation runs, a stopped cluster, unsatisfiable PDBs. The
//!   pool's own image (what a GET-then-PUT sends back) and `latest` change nothing; with
//!   the pool's own image, an exact `orchestratorVersion` of an entry on that image is a
//!   rollback (an upgrade that kept the image left it; UNVERIFIED how AKS tells).
//! - An accepted rollback is a long-running operation like a pool upgrade
//!   (`operation::Phase::PoolRollback`, pool `Upgrading`, UNVERIFIED): surge, drain and
//!   reimage onto the entry's version and image. At the end the pool's
//!   `currentOrchestratorVersion`, `orchestratorVersion` and `nodeImageVersion` are the
//!   entry's and its history is cleared ("Consecutive rollbacks to go back several
//!   versions are not possible"); the rollback itself records nothing.
//! - Faults keyed by version follow the nodes: after a rollback off a version that
//!   `pods_never_ready` names, the pods land on old-version nodes and become Ready.
//! - The request log (`GET /_sim/requests`, `world::WriteRecord`) marks a pool PUT taken
//!   as a rollback request with `rollbackTo` (the image it asked for), accepted or
//!   refused with 400; `null` on every other request (also on a PUT refused before its
//!   body is read: 409, 412, stopped cluster; its `body` is logged as for any write).

pub mod arm;
mod arm_json;
mod arm_usages;
pub mod auth;
pub mod clock;
pub mod conditions;
pub mod cost;
pub mod fleet;
mod generate;
pub mod kube_api;
pub mod kube_model;
mod kube_watch;
pub mod maintenance;
pub mod metrics;
pub mod network;
pub mod operation;
mod protections;
pub mod quota;
pub mod rng;
pub mod rules;
mod selector;
pub mod server;
pub mod shared;
pub mod sign_in;
mod throttle;
mod tls;
pub mod version;
pub mod world;

pub use server::{ClockMode, ReadyInfo, SimError, SimOptions, Simulator};
