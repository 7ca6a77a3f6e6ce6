//! Hostile inputs: values no policy or fleet file should contain, and line-level
//! mutations of a valid file (delete, duplicate, swap, replace a value, insert an
//! unknown key, move the indentation).

use proptest::prelude::*;

/// Values no policy or fleet file should contain, each of which once might have crashed
/// something: overflowing durations and numbers, dates at the ends of chrono's range,
/// wrong types, YAML features (anchors, tags), deep nesting, odd unicode.
pub fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "99999999d",
        "213503982334d",
        "366d",
        "367d",
        "0s",
        "1ms",
        "1s500ms",
        "0",
        "-1",
        "-99999999d",
        "4294967296",
        "18446744073709551616",
        "99999999999999999999999999",
        "-9223372036854775809",
        "1e400",
        "-.inf",
        ".nan",
        "1.5",
        "\"\"",
        "''",
        "~",
        "null",
        "true",
        "[]",
        "{}",
        "[1, 2]",
        "{ a: 1 }",
        "{ soak: 99999999d }",
        "\"ü🦀\u{202e}\u{0}x\"",
        "\"\\u0000\"",
        "Ω≈ç√",
        "+262143-12-31",
        "-262144-01-01",
        "9999-12-31",
        "2026-02-30",
        "0000-00-00",
        "\"0 0 29 2 *\"",
        "\"* * * * * * 2200\"",
        "\"0 30 2 * * SUN\"",
        "\"59 23 31 DEC * 9999\"",
        "Etc/GMT+14",
        "Pacific/Kiritimati",
        "1.99999999999",
        "1.33.99999999999999999",
        "&anchor x",
        "*undefined",
        "!!binary aGk=",
        "!custom 1",
        "|\n  block",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(20_000));
    v.push(format!("\"{}\"", "é".repeat(5_000)));
    v.push(format!("{}1{}", "[".repeat(300), "]".repeat(300)));
    v.push(format!("{}1{}", "{a: ".repeat(300), "}".repeat(300)));
    v
}

#[derive(Debug, Clone)]
pub enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Replace the value of the line's `key: value` (or `- value`) with hostile value `v`.
    Value(usize, usize),
    /// A key no schema knows, at the line's indentation.
    UnknownKey(usize),
    /// The line's indentation moved by -2..=+2 columns.
    Indent(usize, i8),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let n = hostile_values().len();
    prop_oneof![
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        4 => (any::<usize>(), 0..n).prop_map(|(a, v)| Mutation::Value(a, v)),
        1 => any::<usize>().prop_map(Mutation::UnknownKey),
        1 => (any::<usize>(), -2i8..=2).prop_map(|(a, d)| Mutation::Indent(a, d)),
    ]
}

pub fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let values = hostile_values();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match *m {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Value(i, v) => {
                let l = &lines[i % n];
                let cut = l.find(": ").map(|c| c + 2).or_else(|| l.find("- ").map(|c| c + 2));
                if let Some(c) = cut {
                    lines[i % n] = format!("{}{}", &l[..c], values[v]);
                }
            }
            Mutation::UnknownKey(i) => {
                let l = &lines[i % n];
                let indent = l.len() - l.trim_start_matches([' ', '-']).len();
                lines.insert(i % n, format!("{}zz_unknown: 1", " ".repeat(indent)));
            }
            Mutation::Indent(i, d) => {
                let l = &lines[i % n];
                lines[i % n] = if d >= 0 {
                    format!("{}{l}", " ".repeat(d as usize))
                } else {
                    let strip = l.len() - l.trim_start_matches(' ').len();
                    l[strip.min(d.unsigned_abs() as usize)..].to_string()
                };
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
