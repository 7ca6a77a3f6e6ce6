//! The dependency tree keeps one crypto library. A default feature of some client crate
//! (reqwest's `rustls`, azure_core's `reqwest_rustls`, jsonwebtoken's backends) is enough
//! to bring back aws-lc-rs (a C build that doubled the first release build) or RustCrypto's
//! `rsa` (RUSTSEC-2023-0071): this reads `Cargo.lock`, which holds every package of the
//! tree, dev-dependencies included.

#[test]
fn ring_is_the_only_crypto_library_in_the_lock_file() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let packages: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(packages.contains(&"ring"), "ring is the provider");
    for banned in [
        "aws-lc-rs",
        "aws-lc-sys",
        "rsa",
        "openssl",
        "openssl-sys",
        "jsonwebtoken",
    ] {
        assert!(!packages.contains(&banned), "{banned} is back in Cargo.lock");
    }
}
