//! ringmaster keeps fleets of AKS clusters upgraded, ring by ring, safely.
//!
//! Layers (see `docs/architecture.md`): `domain` (versions and AKS's rules), `sim`
//! (the AKS simulator), `yaml` (inputs with positions for errors), `policy` (rollout
//! policies and their compiler), `schedule` (cron, time zones, maintenance windows),
//! `plan` (the pure planner), `validate` (`ringmaster validate`).

pub mod api;
pub mod arm;
pub mod clock;
pub mod demo;
pub mod discovery;
pub mod domain;
pub mod embedded;
pub mod engine;
pub mod events;
pub mod forecast;
pub mod gate;
pub mod health;
pub mod identity;
pub mod kube;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod rollback;
pub mod runtime;
pub mod schedule;
pub mod service;
pub mod snapshot;
/// The AKS simulator, its own crate (`crates/aks-sim`): ringmaster's test oracle.
pub use aks_sim as sim;
pub mod store;
pub mod summary;
pub mod text;
pub mod upgrades;
pub mod validate;
/// YAML input with positions and human durations (`crates/yaml-spans`).
pub use yaml_spans as yaml;
