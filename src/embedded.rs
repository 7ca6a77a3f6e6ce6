//! The demo's fleet and policy, built into the binary, so that `ringmaster demo` and
//! `ringmaster sim` work from any directory and from an installed binary or the container
//! image, where the repository's `examples/` and `policies/` are not beside it. A file
//! given on the command line always wins.

use crate::sim::fleet::{self, Fleet};
use crate::yaml::SourceErrors;
use std::path::{Path, PathBuf};

/// `examples/fleets/demo.yaml` as it was when the binary was built.
pub const DEMO_FLEET: &str = include_str!("../examples/fleets/demo.yaml");
/// `policies/demo.yaml` as it was when the binary was built.
pub const DEMO_POLICY: &str = include_str!("../policies/demo.yaml");
/// How errors and summaries name the embedded files.
pub const DEMO_FLEET_NAME: &str = "examples/fleets/demo.yaml (built in)";
pub const DEMO_POLICY_NAME: &str = "policies/demo.yaml (built in)";

/// A policy's name (for errors and the stored rollout) and text.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

impl PolicySource {
    /// The file at `path`, or the built-in demo policy when there is none.
    pub fn demo_or(path: Option<&Path>) -> anyhow::Result<PolicySource> {
        match path {
            Some(p) => PolicySource::read(p),
            None => Ok(PolicySource {
                name: DEMO_POLICY_NAME.into(),
                text: DEMO_POLICY.into(),
            }),
        }
    }

    /// The policy file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<PolicySource> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(PolicySource {
            name: path.display().to_string(),
            text,
        })
    }
}

/// The fleet file at `path`, or the built-in demo fleet; also the name to show for it.
pub fn fleet_or_demo(path: Option<&PathBuf>) -> Result<(String, Fleet), SourceErrors> {
    match path {
        Some(p) => fleet::load(p).map(|f| (p.display().to_string(), f)),
        None => fleet::parse(DEMO_FLEET_NAME, DEMO_FLEET).map(|f| (DEMO_FLEET_NAME.to_string(), f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in copies compile, and are the repository's files (a stale binary
    /// would show in `cargo test` after an edit of either file).
    #[test]
    fn the_built_in_demo_files_compile_and_match_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (name, f) = fleet_or_demo(None).unwrap();
        assert_eq!(name, DEMO_FLEET_NAME);
        assert!(f.clusters.len() >= 7);
        crate::policy::compile(DEMO_POLICY_NAME, DEMO_POLICY).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("examples/fleets/demo.yaml")).unwrap(),
            DEMO_FLEET
        );
        assert_eq!(
            std::fs::read_to_string(root.join("policies/demo.yaml")).unwrap(),
            DEMO_POLICY
        );
    }
}
