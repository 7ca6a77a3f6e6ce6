//! Versions as AKS writes them, the simulator's own reading: Kubernetes versions
//! (`1.33.2`, or `1.33` meaning "the latest GA patch of 1.33") and node image versions
//! (`AKSUbuntu-2204gen2containerd-202410.15.0`).
//!
//! The simulator is the test oracle of ringmaster, so it shares no code with ringmaster's
//! `domain`: a mistake in one reading of a version shows up as a disagreement between the
//! two instead of being agreed on silently.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A version string that is not `MAJOR.MINOR[.PATCH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a Kubernetes version (expected MAJOR.MINOR.PATCH, e.g. 1.33.2)",
            self.0
        )
    }
}

impl std::error::Error for VersionError {}

/// A minor release line, `1.33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinorVersion {
    pub major: u16,
    pub minor: u16,
}

/// A patch release, `1.33.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

/// What `kubernetesVersion` / `orchestratorVersion` may hold: a minor or an exact patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionSpec {
    Minor(MinorVersion),
    Exact(KubeVersion),
}

impl MinorVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// How many minors `self` is after `other` (negative when before). A different major
    /// counts as a distance no rule allows: Kubernetes has never shipped a second major.
    pub fn minors_after(self, other: MinorVersion) -> i64 {
        let index = |m: MinorVersion| i64::from(m.major) * 1000 + i64::from(m.minor);
        index(self) - index(other)
    }

    /// The next minor release line (`1.33` -> `1.34`).
    pub fn next(self) -> MinorVersion {
        MinorVersion::new(self.major, self.minor + 1)
    }
}

impl KubeVersion {
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self { major, minor, patch }
    }

    pub fn minor_version(self) -> MinorVersion {
        MinorVersion::new(self.major, self.minor)
    }

    /// How many minors `self` is after `other`.
    pub fn minors_after(self, other: KubeVersion) -> i64 {
        self.minor_version().minors_after(other.minor_version())
    }
}

impl VersionSpec {
    pub fn minor_version(self) -> MinorVersion {
        match self {
            VersionSpec::Minor(m) => m,
            VersionSpec::Exact(v) => v.minor_version(),
        }
    }

    /// Whether `v` is what this spec names (a minor names each of its patches).
    pub fn matches(self, v: KubeVersion) -> bool {
        match self {
            VersionSpec::Minor(m) => v.minor_version() == m,
            VersionSpec::Exact(e) => e == v,
        }
    }
}

/// Dotted decimal numbers without leading zeros, after an optional `v` (kubelet writes `v1.33.2`).
fn numbers(s: &str) -> Option<Vec<u16>> {
    let t = s.strip_prefix('v').unwrap_or(s);
    t.split('.')
        .map(|p| {
            let canonical =
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !(p.len() > 1 && p.starts_with('0'));
            if canonical { p.parse().ok() } else { None }
        })
        .collect()
}

impl FromStr for KubeVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match numbers(s).as_deref() {
            Some([a, b, c]) => Ok(KubeVersion::new(*a, *b, *c)),
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl FromStr for MinorVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match numbers(s).as_deref() {
            Some([a, b]) => Ok(MinorVersion::new(*a, *b)),
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl FromStr for VersionSpec {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match numbers(s).as_deref() {
            Some([a, b]) => Ok(VersionSpec::Minor(MinorVersion::new(*a, *b))),
            Some([a, b, c]) => Ok(VersionSpec::Exact(KubeVersion::new(*a, *b, *c))),
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl fmt::Display for MinorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Minor(m) => m.fmt(f),
            VersionSpec::Exact(v) => v.fmt(f),
        }
    }
}

/// Orders the version part of two node images of one family (`202410.15.0` before
/// `202411.2.0`): AKS names Linux images `<SKU>-<YYYYMM>.<DD>.<rev>` and Windows images
/// `<SKU>-<build>.<rev>.<YYMMDD>`, so each dotted part compares as a number, the date
/// parts included. Text that is not dotted numbers compares as text.
///
/// Source: AKS docs, `upgrade-node-image.md`: "You can't downgrade a node image version
/// (for example, ... _AKSUbuntu-2404-202601.27.0_ to _AKSUbuntu-2404-202601.13.0_)", so
/// `202601.27.0` is the later of the two: the parts order as numbers.
pub fn compare_image_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_versions_parse_and_order_numerically() {
        let a: KubeVersion = "1.9.9".parse().unwrap();
        let b: KubeVersion = "v1.10.0".parse().unwrap();
        assert!(a < b, "1.10 is after 1.9 (numbers, not text)");
        assert_eq!(b.minors_after(a), 1);
        assert_eq!(b.to_string(), "1.10.0");
        assert_eq!(
            "1.33".parse::<VersionSpec>().unwrap(),
            VersionSpec::Minor(MinorVersion::new(1, 33))
        );
        for bad in ["1.33.x", "1.033.1", "1.33", "", "1..2"] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad}");
        }
        assert!(VersionSpec::Minor(MinorVersion::new(1, 33)).matches("1.33.7".parse().unwrap()));
        assert!(!VersionSpec::Exact("1.33.6".parse().unwrap()).matches("1.33.7".parse().unwrap()));
    }

    #[test]
    fn node_images_order_by_their_dated_parts() {
        assert_eq!(compare_image_versions("202601.13.0", "202601.27.0"), Ordering::Less);
        assert_eq!(compare_image_versions("202410.15.0", "202411.2.0"), Ordering::Less);
        assert_eq!(compare_image_versions("202411.2.1", "202411.2.0"), Ordering::Greater);
        assert_eq!(
            compare_image_versions("20348.2762.241009", "20348.2762.241009"),
            Ordering::Equal
        );
    }
}
