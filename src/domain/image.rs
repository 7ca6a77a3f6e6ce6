//! Node image versions: `<family>-<version>`, e.g. `AKSUbuntu-2204gen2containerd-202410.15.0`
//! or `AKSWindows-2022-containerd-20348.2762.241009`. The family is everything before the
//! last `-`; versions of one family order by their numeric dotted parts.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeImageVersion {
    pub family: String,
    pub version: String,
}

impl NodeImageVersion {
    pub fn new(family: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            family: family.into(),
            version: version.into(),
        }
    }

    /// Splits `family-version` at the last `-`; `None` when there is no family or the
    /// version part is not dotted numbers.
    pub fn parse(s: &str) -> Option<Self> {
        let (family, version) = s.rsplit_once('-')?;
        if family.is_empty() || numeric_parts(version).is_none() {
            return None;
        }
        Some(Self::new(family, version))
    }

    /// Orders two versions of the same family; `None` across families.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        (self.family == other.family).then(|| compare_versions(&self.version, &other.version))
    }
}

fn numeric_parts(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// Compares dotted numeric version strings; unparsable parts compare as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (numeric_parts(a), numeric_parts(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl fmt::Display for NodeImageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.family, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let a = NodeImageVersion::parse("AKSUbuntu-2204gen2containerd-202410.15.0").unwrap();
        assert_eq!(a.family, "AKSUbuntu-2204gen2containerd");
        let b = NodeImageVersion::parse("AKSUbuntu-2204gen2containerd-202411.2.0").unwrap();
        assert_eq!(a.compare(&b), Some(Ordering::Less));
        let w = NodeImageVersion::parse("AKSWindows-2022-containerd-20348.2762.241009").unwrap();
        assert_eq!(w.family, "AKSWindows-2022-containerd");
        assert_eq!(a.compare(&w), None);
        assert!(NodeImageVersion::parse("nodash").is_none());
    }
}
