//! Vocabulary shared by every layer: Kubernetes versions, node image versions,
//! durations, and AKS's version rules (one table for the planner and the simulator).

pub mod duration;
pub mod fleet;
pub mod image;
pub mod rules;
pub mod version;

pub use image::NodeImageVersion;
pub use version::{KubeVersion, MinorVersion, VersionError, VersionSpec};
