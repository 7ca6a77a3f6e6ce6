//! vCPUs and quota family of common VM sizes, for the surge quota check.
//!
//! Why a table and not a read: the Resource SKUs list (`Microsoft.Compute/skus`) is tens
//! of megabytes per subscription, far beyond preflight's read budget, and size names do
//! not encode vCPUs reliably (`Standard_DS3_v2` has 4; constrained sizes such as
//! `Standard_E4-2s_v5` have 2 active). Sizes not listed here give a `warns` finding
//! ("cannot check quota") instead of a guess. Source: Azure's VM size pages
//! (learn.microsoft.com/azure/virtual-machines/sizes/general-purpose/*), family names as
//! the Compute usages API spells them.

/// (size, vCPUs, quota family). Names compare case-insensitively.
const SIZES: &[(&str, u32, &str)] = &[
    ("Standard_B2s", 2, "standardBSFamily"),
    ("Standard_B2ms", 2, "standardBSFamily"),
    ("Standard_B4ms", 4, "standardBSFamily"),
    ("Standard_B8ms", 8, "standardBSFamily"),
    ("Standard_DS2_v2", 2, "standardDSv2Family"),
    ("Standard_DS3_v2", 4, "standardDSv2Family"),
    ("Standard_DS4_v2", 8, "standardDSv2Family"),
    ("Standard_D2s_v3", 2, "standardDSv3Family"),
    ("Standard_D4s_v3", 4, "standardDSv3Family"),
    ("Standard_D8s_v3", 8, "standardDSv3Family"),
    ("Standard_D16s_v3", 16, "standardDSv3Family"),
    ("Standard_D2_v5", 2, "standardDv5Family"),
    ("Standard_D4_v5", 4, "standardDv5Family"),
    ("Standard_D8_v5", 8, "standardDv5Family"),
    ("Standard_D2s_v5", 2, "standardDSv5Family"),
    ("Standard_D4s_v5", 4, "standardDSv5Family"),
    ("Standard_D8s_v5", 8, "standardDSv5Family"),
    ("Standard_D16s_v5", 16, "standardDSv5Family"),
    ("Standard_D32s_v5", 32, "standardDSv5Family"),
    ("Standard_D2ds_v5", 2, "standardDDSv5Family"),
    ("Standard_D4ds_v5", 4, "standardDDSv5Family"),
    ("Standard_D8ds_v5", 8, "standardDDSv5Family"),
    ("Standard_D2as_v5", 2, "standardDASv5Family"),
    ("Standard_D4as_v5", 4, "standardDASv5Family"),
    ("Standard_D8as_v5", 8, "standardDASv5Family"),
    ("Standard_D2s_v6", 2, "standardDSv6Family"),
    ("Standard_D4s_v6", 4, "standardDSv6Family"),
    ("Standard_D8s_v6", 8, "standardDSv6Family"),
    ("Standard_E2s_v5", 2, "standardESv5Family"),
    ("Standard_E4s_v5", 4, "standardESv5Family"),
    ("Standard_E8s_v5", 8, "standardESv5Family"),
    ("Standard_E16s_v5", 16, "standardESv5Family"),
    ("Standard_F2s_v2", 2, "standardFSv2Family"),
    ("Standard_F4s_v2", 4, "standardFSv2Family"),
    ("Standard_F8s_v2", 8, "standardFSv2Family"),
    ("Standard_F16s_v2", 16, "standardFSv2Family"),
];

/// The Compute usage name of a region's total vCPUs.
pub const REGIONAL_CORES: &str = "cores";

/// (vCPUs, quota family) of a size, when known.
pub fn lookup(size: &str) -> Option<(u32, &'static str)> {
    SIZES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(size))
        .map(|(_, c, f)| (*c, *f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_found_whatever_their_case() {
        assert_eq!(lookup("standard_d4s_v5"), Some((4, "standardDSv5Family")));
        assert_eq!(lookup("Standard_DS3_v2"), Some((4, "standardDSv2Family")));
        assert_eq!(lookup("Standard_Z9"), None);
    }
}
