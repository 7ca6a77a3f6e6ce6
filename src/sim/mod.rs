//! The AKS fleet simulator: ARM and each cluster's Kubernetes API over real HTTP(S),
//! on a virtual clock, with faults. The embedded default of ringmaster, its demo and
//! its test bed.

pub mod clock;
pub mod fleet;
mod generate;
pub mod kube_model;
pub mod rng;
