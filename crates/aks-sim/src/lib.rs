//! The AKS fleet simulator: ARM and each cluster's Kubernetes API over real HTTP(S),
//! on a virtual clock, with faults. The embedded default of ringmaster, its demo and
//! its test bed.

pub mod arm;
mod arm_json;
mod arm_usages;
pub mod auth;
pub mod clock;
pub mod conditions;
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
mod throttle;
mod tls;
pub mod version;
pub mod world;

pub use server::{ClockMode, ReadyInfo, SimError, SimOptions, Simulator};
