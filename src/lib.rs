//! ringmaster keeps fleets of AKS clusters upgraded, ring by ring, safely.
//!
//! Layers (see `docs/architecture.md`): `domain` (versions and AKS's rules), `sim`
//! (the AKS simulator), `yaml` (inputs with positions for errors).

pub mod arm;
pub mod clock;
pub mod domain;
pub mod identity;
pub mod sim;
pub mod yaml;
pub mod schedule;
pub mod policy;
