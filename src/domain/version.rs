//! Kubernetes versions as AKS writes them: `1.33.2` (a patch) or `1.33` (a minor,
//! meaning "the latest GA patch of 1.33" when sent as `kubernetesVersion`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A version string that is not `MAJOR.MINOR[.PATCH]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Kubernetes version (expected MAJOR.MINOR.PATCH, e.g. 1.33.2)")]
pub struct VersionError(pub String);

/// A minor release line, `1.33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinorVersion {
    pub major: u16,
    pub minor: u16,
}

/// A full version, `1.33.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

/// What `kubernetesVersion`/`orchestratorVersion` may hold: a minor or an exact patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionSpec {
    Minor(MinorVersion),
    Exact(KubeVersion),
}

impl MinorVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// A single index so that minor distances are plain subtraction. Kubernetes has
    /// never shipped a second major; a major change counts as a huge distance.
    pub fn index(self) -> i64 {
        i64::from(self.major) * 1000 + i64::from(self.minor)
    }

    /// How many minors `self` is after `other` (negative when before).
    pub fn minors_after(self, other: MinorVersion) -> i64 {
        self.index() - other.index()
    }

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
}

fn parse_parts(s: &str) -> Option<Vec<u16>> {
    let t = s.strip_prefix('v').unwrap_or(s);
    if t.is_empty() {
        return None;
    }
    t.split('.')
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect()
}

impl FromStr for KubeVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_parts(s).as_deref() {
            Some([a, b, c]) => Ok(KubeVersion::new(*a, *b, *c)),
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl FromStr for MinorVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_parts(s).as_deref() {
            Some([a, b]) => Ok(MinorVersion::new(*a, *b)),
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl FromStr for VersionSpec {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_parts(s).as_deref() {
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

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(KubeVersion);
string_serde!(MinorVersion);
string_serde!(VersionSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let a: KubeVersion = "1.32.9".parse().unwrap();
        let b: KubeVersion = "v1.33.0".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.minors_after(a), 1);
        assert_eq!(b.to_string(), "1.33.0");
        assert_eq!(
            "1.33".parse::<VersionSpec>().unwrap(),
            VersionSpec::Minor(MinorVersion::new(1, 33))
        );
        assert!("1.33.x".parse::<KubeVersion>().is_err());
        assert!("1.033.1".parse::<KubeVersion>().is_err());
        assert!("1.33".parse::<KubeVersion>().is_err());
        assert!("".parse::<VersionSpec>().is_err());
        assert!("1.10.0".parse::<KubeVersion>().unwrap() > "1.9.9".parse().unwrap());
    }
}
