//! `pools:`, the node pool filter: which pools a policy's pool steps are for.

use super::super::raw::RawPools;
use super::super::{KNOWN_OS_SKUS, PoolFilter, os_type_of_sku};
use super::Compiler;
use crate::domain::fleet::{OsType, PoolMode};
use crate::yaml::Spanned;

/// A pool name or glob: AKS pool names are lower-case letters and digits, so anything
/// else (a space, a dash) is a typo that would match no pool; upper case is accepted
/// because the match ignores case, as the fleet selectors' globs do.
fn valid_pool_glob(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

impl Compiler {
    pub(super) fn pools(&mut self, p: Option<&Spanned<RawPools>>) -> PoolFilter {
        let Some(p) = p else {
            return PoolFilter::default();
        };
        let r = &p.value;
        let os_type = r.os_type.as_ref().and_then(|t| {
            self.one_of(t, &["Linux", "Windows"], "pools.os_type").map(|t| match t {
                "Windows" => OsType::Windows,
                _ => OsType::Linux,
            })
        });
        let mode = r.mode.as_ref().and_then(|m| {
            self.one_of(m, &["System", "User"], "pools.mode").map(|m| match m {
                "System" => PoolMode::System,
                _ => PoolMode::User,
            })
        });
        self.unique(r.os_sku.iter(), "pools.os_sku");
        let mut os_sku = Vec::new();
        for s in &r.os_sku {
            let Some(known) = self.one_of(s, &KNOWN_OS_SKUS, "pools.os_sku") else {
                continue;
            };
            // `os_type: Linux` with `os_sku: [Windows2022]` can match no pool: a policy
            // that says it manages pools and would never touch one.
            if let Some(t) = os_type
                && os_type_of_sku(known) != t
            {
                self.d.at(
                    s,
                    format!(
                        "pools.os_sku `{known}` is a {:?} SKU, but pools.os_type is {t:?}: no pool can match both",
                        os_type_of_sku(known)
                    ),
                );
            }
            os_sku.push(known.to_string());
        }
        self.unique(r.names.iter(), "pools.names entry");
        for n in &r.names {
            if !valid_pool_glob(&n.value) {
                self.d.at(
                    n,
                    format!(
                        "pools.names `{}` is not a pool name or glob (letters, digits, `*`, `?`)",
                        n.value
                    ),
                );
            }
        }
        let filter = PoolFilter {
            os_type,
            os_sku,
            mode,
            names: r.names.iter().map(|n| n.value.clone()).collect(),
        };
        let given = r.os_type.is_some() || r.mode.is_some() || !r.os_sku.is_empty() || !r.names.is_empty();
        if !given {
            self.d.at(
                p,
                "`pools` is empty and would match every pool (leave it out for every pool)",
            );
        }
        filter
    }
}
