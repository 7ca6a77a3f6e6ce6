//! The fleet file: what the simulator pretends Azure holds. YAML, documented in
//! `docs/fleet.md`; parsed strictly (unknown fields are errors) and then compiled,
//! reporting every problem at once as `file:line:col: message`.
//!
//! `raw` holds the serde document, `model` the compiled fleet, `compile` the validation
//! of the one into the other (`cluster` for clusters, pools and workloads, `faults` for
//! faults, model and checks); this file reads and parses.

use std::path::Path;
use yaml_spans::SourceErrors;

mod cluster;
mod compile;
mod faults;
mod model;
mod raw;

pub(crate) use cluster::{compile_pool, compile_workload};
pub(crate) use compile::Compiler;
pub(crate) use compile::parse_count_or_percent;
pub use compile::{compile, valid_pool_name};
pub use faults::{Fault, FaultKind, OpKind, ServerErrorKind};
pub use model::{
    ArmSettings, Bucket, CatalogueMinor, ClusterDef, Durations, Fleet, ImageLine, ImageRelease, OsType, Pdb, PoolDef,
    PoolMode, Undrainable, UpgradeSettings, WorkloadDef,
};
pub use raw::{
    FleetFile, RawArm, RawBucket, RawCluster, RawDurations, RawFault, RawGenerate, RawImageLine, RawImageRelease,
    RawMinor, RawPdb, RawPool, RawRingShare, RawUpgradeSettings, RawWorkload,
};

pub use super::conditions::ClusterConditions;

/// Reads, parses and validates a fleet file.
pub fn load(path: &Path) -> Result<Fleet, SourceErrors> {
    let (file, text) = yaml_spans::read(path)?;
    parse(&file, &text)
}

/// Parses and validates fleet YAML from a string (`file` names it in errors). Unknown
/// fields are errors, and checking goes on without them, so one run shows every problem.
pub fn parse(file: &str, text: &str) -> Result<Fleet, SourceErrors> {
    let (raw, unknown) = yaml_spans::parse_reporting_unknown::<FleetFile>(file, text)?;
    yaml_spans::with_unknown(compile(file, raw), unknown)
}

/// The longest duration a fleet file may give: 366 days, as for policies. Simulated time
/// is milliseconds in an `i64` and every duration is added to it (`SimTime::plus`): a
/// duration near `u64::MAX` milliseconds overflowed that sum (a panic in debug builds,
/// time running backwards in release).
pub use yaml_spans::duration::MAX_DURATION;
