//! Unknown keys inserted at valid places: checking goes on past every one of them.

use crate::pipeline::{POLICIES, fixtures};
use proptest::prelude::*;

/// A value for an inserted unknown key, `indent` being the key's column (0-based): a
/// scalar, a flow collection or a block mapping with a nested list.
fn unknown_value(kind: usize, indent: usize) -> String {
    let pad = |n: usize| " ".repeat(indent + n);
    match kind % 5 {
        0 => "1".into(),
        1 => "99999999d".into(),
        2 => "[1, { a: 2 }]".into(),
        3 => "{ channel: rapid, soak: 1h }".into(),
        _ => format!(
            "\n{}name: x\n{}rings:\n{}- 1\n{}- {{ b: 2 }}",
            pad(2),
            pad(2),
            pad(4),
            pad(4)
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Unknown keys inserted into valid mappings of a shipped policy, and a soak made too
    /// long: the errors are exactly those (each at its line and column), so checking
    /// went on past every unknown key and blanking them added nothing spurious.
    #[test]
    fn unknown_keys_and_a_semantic_error_are_all_reported_and_nothing_else(
        which in 0..POLICIES.len(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        kinds in prop::collection::vec(0usize..5, 6),
    ) {
        let (file, text) = &fixtures().policies[which];
        let lines: Vec<&str> = text.lines().collect();
        // Lines `key: scalar-or-flow` (optionally after `- `): a key may follow them at
        // the same column, in the same mapping.
        let eligible: Vec<(usize, usize)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let body = l.trim_start_matches([' ', '-']);
                let col = l.len() - body.len();
                let (key, value) = body.split_once(": ")?;
                let value = value.trim();
                let simple = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                (simple && !value.is_empty() && !value.starts_with(['#', '|', '>'])).then_some((i, col))
            })
            .collect();
        prop_assume!(!eligible.is_empty());
        let mut chosen: Vec<(usize, usize)> = picks.iter().map(|p| *p.get(&eligible)).collect();
        chosen.sort();
        chosen.dedup_by_key(|c| c.0);
        let soak = lines.iter().position(|l| l.trim_start().starts_with("soak: "));
        let mut out: Vec<String> = Vec::new();
        let mut expected: Vec<String> = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if Some(i) == soak {
                let col = l.find("soak: ").unwrap() + "soak: ".len();
                out.push(format!("{}99999999d", &l[..col]));
                expected.push(format!("{file}:{}:{}: `99999999d` is longer than 366d", out.len(), col + 1));
            } else {
                out.push(l.to_string());
            }
            if let Some(k) = chosen.iter().position(|c| c.0 == i) {
                let col = chosen[k].1;
                let value = unknown_value(kinds[k], col);
                let line = out.len() + 1;
                out.extend(format!("{}zz_unknown_{k}: {value}", " ".repeat(col)).lines().map(String::from));
                expected.push(format!("{file}:{line}:{}: unknown field `zz_unknown_{k}`", col + 1));
            }
        }
        let mutated = out.join("\n") + "\n";
        let errors = ringmaster::policy::compile(file, &mutated).expect_err("refused");
        let shown: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        prop_assert_eq!(shown.len(), expected.len(), "{:#?}\n{:#?}\n{}", shown, expected, mutated);
        for want in &expected {
            prop_assert!(shown.iter().any(|s| s.starts_with(want.as_str())), "missing {}\n{:#?}\n{}", want, shown, mutated);
        }
    }
}
