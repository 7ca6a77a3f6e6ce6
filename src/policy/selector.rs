//! Cluster selectors: tags, resource groups, names (globs), subscriptions. Azure resource
//! names, resource groups, subscription ids and tag names compare case-insensitively, as
//! Azure itself does; tag values compare exactly.

use crate::domain::fleet::ClusterState;
use std::collections::{BTreeMap, BTreeSet};

/// Matches clusters when every given criterion holds; a list holds when any entry does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Tag name (lower case) -> exact value.
    pub tags: BTreeMap<String, String>,
    /// Globs.
    pub resource_groups: Vec<String>,
    /// Globs.
    pub names: Vec<String>,
    pub subscriptions: Vec<String>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
            && self.resource_groups.is_empty()
            && self.names.is_empty()
            && self.subscriptions.is_empty()
    }

    pub fn matches(&self, c: &ClusterState) -> bool {
        let tag = |k: &str| c.tags.iter().find(|(ck, _)| ck.eq_ignore_ascii_case(k)).map(|(_, v)| v);
        self.tags.iter().all(|(k, v)| tag(k) == Some(v))
            && any_glob(&self.resource_groups, &c.id.resource_group)
            && any_glob(&self.names, &c.id.name)
            && (self.subscriptions.is_empty()
                || self
                    .subscriptions
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&c.id.subscription)))
    }

    /// The names this selector can match, when they are all plain names (no globs).
    pub fn explicit_names(&self) -> Option<BTreeSet<String>> {
        (!self.names.is_empty() && self.names.iter().all(|n| !is_glob(n)))
            .then(|| self.names.iter().map(|n| n.to_ascii_lowercase()).collect())
    }

    /// True when no cluster can match both selectors, judged from the selectors alone:
    /// a tag with two different values, or plain lists with nothing in common.
    pub fn certainly_disjoint(&self, other: &Selector) -> bool {
        let tags_conflict = self.tags.iter().any(|(k, v)| other.tags.get(k).is_some_and(|w| w != v));
        let plain_disjoint = |a: &[String], b: &[String]| {
            !a.is_empty()
                && !b.is_empty()
                && a.iter().chain(b).all(|x| !is_glob(x))
                && !a.iter().any(|x| b.iter().any(|y| x.eq_ignore_ascii_case(y)))
        };
        tags_conflict
            || plain_disjoint(&self.names, &other.names)
            || plain_disjoint(&self.resource_groups, &other.resource_groups)
            || plain_disjoint(&self.subscriptions, &other.subscriptions)
    }
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob_match(p, text))
}

pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// `*` matches any run of characters, `?` one character; case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("aks-*-weu-??", "AKS-dev-weu-01"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("aks-prd-*", "aks-dev-weu-01"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn disjointness() {
        let s = |tags: &[(&str, &str)], names: &[&str]| Selector {
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        assert!(s(&[("ring", "dev")], &[]).certainly_disjoint(&s(&[("ring", "prod")], &[])));
        assert!(!s(&[("ring", "dev")], &[]).certainly_disjoint(&s(&[("team", "a")], &[])));
        assert!(s(&[], &["a"]).certainly_disjoint(&s(&[], &["b"])));
        assert!(!s(&[], &["a*"]).certainly_disjoint(&s(&[], &["b"])));
        assert!(!s(&[], &["a"]).certainly_disjoint(&s(&[], &["A", "b"])));
    }
}
