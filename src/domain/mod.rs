//! Vocabulary shared by every layer: Kubernetes versions, node image versions,
//! durations, and AKS's version rules as the planner applies them (the simulator keeps its
//! own reading of them, `sim::rules`, so that each checks the other).

pub mod duration;
pub mod fleet;
pub mod image;
pub mod operation;
pub mod rules;
pub mod version;

pub use image::NodeImageVersion;
pub use operation::OperationRef;
pub use version::{KubeVersion, MinorVersion, VersionError, VersionSpec};
