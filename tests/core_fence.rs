//! The core fence (issue 27): the core modules (versions and rules, policies, schedules,
//! the planner, the gates, the engine, the pre-flight checks, the forecast) are pure and
//! know nothing of the edge (ARM, the store, the Kubernetes watches, the runtime, the
//! service, the API, the simulator) nor of the crates that do I/O or serve. This reads
//! their source and fails on any path into the edge: `use` declarations (groups
//! included), fully qualified paths in code, `super::` climbs that leave the core (resolved
//! from the file's place in the module tree and its inline `mod` blocks), attribute paths
//! (`#[tokio::test]`) and serde's string paths (`with = "crate::store::codec"`). Comments,
//! doc comments and other string literals do not count.
//!
//! The edges the core has today are listed in [`ALLOWED`], one `(file, edge)` pair each
//! with its reason. A new edge fails, naming file, line and the path; an allowance that
//! nothing uses any more fails too, so the list can only shrink.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

/// The core: directories (every `.rs` below them) under the package root.
const CORE: &[&str] = &[
    "src/domain",
    "src/policy",
    "src/schedule",
    "src/plan",
    "src/gate",
    "src/engine",
    // The pure checks only: preflight's reads (`read.rs`, `facts.rs`) are the edge's side.
    "src/preflight/checks",
    "src/forecast",
];

/// Modules of this crate on the edge (first segment after `crate::`).
const EDGE_MODULES: &[&str] = &["arm", "store", "kube", "runtime", "service", "api", "sim"];

/// Crates of the edge (the first segment of a path that is not `crate`, `self`, `super`).
const EDGE_CRATES: &[&str] = &["tokio", "axum", "rusqlite", "kube", "reqwest", "hyper", "aks_sim"];

/// Today's edges of the core: `(file, edge, why)`. Only ever remove entries: the test fails
/// on an entry that is no longer needed. An edge is `crate::<module>` or a crate's name.
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "src/forecast/history.rs",
        "crate::store",
        "history::load reads past rollouts and the audit log from the Store",
    ),
    (
        "src/preflight/checks/tests.rs",
        "crate::arm",
        "the checks' tests build quota facts from arm::models::{Usage, UsageName}",
    ),
];

#[test]
fn the_core_reaches_no_edge_beyond_its_allowance() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in CORE {
        let before = files.len();
        rust_files(&root.join(dir), &mut files);
        assert!(
            files.len() > before,
            "{dir} holds no .rs file: the fence's list of core directories is stale"
        );
    }
    let mut new_edges = Vec::new();
    let mut used = BTreeSet::new();
    for path in &files {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let src = std::fs::read_to_string(path).unwrap();
        for hit in edges(&rel, &src) {
            match ALLOWED.iter().position(|(f, e, _)| *f == rel && *e == hit.edge) {
                Some(i) => {
                    used.insert(i);
                }
                None => new_edges.push(format!(
                    "{rel}:{}: `{}` reaches the edge {} (in `{}`)",
                    hit.line,
                    hit.path,
                    hit.edge,
                    src.lines().nth(hit.line - 1).unwrap_or("").trim()
                )),
            }
        }
    }
    let stale: Vec<String> = ALLOWED
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, (f, e, _))| format!("({f:?}, {e:?}) is no longer needed: remove it from ALLOWED"))
        .collect();
    // Written to the stream itself, not through `println!`, so that it shows when the test
    // passes too.
    let _ = writeln!(
        std::io::stderr(),
        "core fence: {} files, {} allowances left (of {} listed)",
        files.len(),
        used.len(),
        ALLOWED.len()
    );
    let mut problems = Vec::new();
    if !new_edges.is_empty() {
        problems.push(format!(
            "the core reaches the edge where it did not before (move the type into the core, \
             or the code out of it):\n  {}",
            new_edges.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        problems.push(format!("allowances nothing needs any more:\n  {}", stale.join("\n  ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every allowance says why, and no pair is listed twice.
#[test]
fn every_allowance_has_a_reason() {
    let mut seen = BTreeSet::new();
    for (file, edge, why) in ALLOWED {
        assert!(!why.trim().is_empty(), "({file}, {edge}) says no reason");
        assert!(seen.insert((file, edge)), "({file}, {edge}) is listed twice");
        let known = edge
            .strip_prefix("crate::")
            .map_or(EDGE_CRATES.contains(edge), |m| EDGE_MODULES.contains(&m));
        assert!(known, "({file}, {edge}): not an edge");
    }
}

/// The scanner on the spellings it must see, and on what it must leave alone.
#[test]
fn the_scanner_sees_every_spelling() {
    let found = |file: &str, src: &str| -> Vec<(usize, String, String)> {
        edges(file, src).into_iter().map(|h| (h.line, h.edge, h.path)).collect()
    };
    let one = |line: usize, edge: &str, path: &str| vec![(line, edge.to_string(), path.to_string())];
    let f = "src/engine/model.rs";

    assert_eq!(
        found(f, "use crate::store::Store;"),
        one(1, "crate::store", "crate::store::Store")
    );
    assert_eq!(
        found(
            f,
            "pub(crate) use crate::{\n    domain::KubeVersion,\n    store::{self, Store as S},\n};"
        ),
        vec![
            (3, "crate::store".into(), "crate::store::self".into()),
            (3, "crate::store".into(), "crate::store::Store".into()),
        ]
    );
    assert_eq!(found(f, "use crate::arm;"), one(1, "crate::arm", "crate::arm"));
    assert_eq!(
        found(f, "fn f() -> R {\n    crate::store::RolloutRecord { id }\n}"),
        one(2, "crate::store", "crate::store::RolloutRecord")
    );
    assert_eq!(
        found(f, "macro_rules! m { () => { $crate::api::table::wrap() } }"),
        one(1, "crate::api", "crate::api::table::wrap")
    );
    // Crates: bare, global, in attributes and macros.
    assert_eq!(found(f, "use tokio::sync::mpsc;"), one(1, "tokio", "tokio::sync::mpsc"));
    assert_eq!(
        found(f, "let c = ::reqwest::Client::new();"),
        one(1, "reqwest", "::reqwest::Client::new")
    );
    assert_eq!(
        found(f, "#[tokio::test]\nasync fn t() {}"),
        one(1, "tokio", "tokio::test")
    );
    assert_eq!(
        found(f, "use {axum::Router, std::fmt};"),
        one(1, "axum", "axum::Router")
    );
    assert_eq!(found(f, "use aks_sim as sim;"), one(1, "aks_sim", "aks_sim"));
    assert_eq!(found(f, "extern crate rusqlite;"), one(1, "rusqlite", "::rusqlite"));
    assert_eq!(
        found(f, "fn f() -> ::hyper::Body { todo!() }"),
        one(1, "hyper", "::hyper::Body")
    );
    assert_eq!(
        found(f, "fn f() { return ::tokio::spawn(g()); }"),
        one(1, "tokio", "::tokio::spawn")
    );
    assert_eq!(found(f, "let x: kube::Api<Pod>;"), one(1, "kube", "kube::Api"));
    // serde's string paths are code.
    assert_eq!(
        found(f, "#[serde(with = \"crate::store::codec\")]\nstruct S;"),
        one(1, "crate::store", "crate::store::codec")
    );
    // Climbs, from the file's module and its inline modules.
    assert_eq!(
        found("src/gate/tests/mod.rs", "use super::super::kube::OwnerKey;"),
        one(1, "crate::kube", "super::super::kube::OwnerKey")
    );
    assert_eq!(
        found(
            "src/gate/pods.rs",
            "fn f() { super::super::kube::KubeSnapshot::default() }"
        ),
        one(1, "crate::kube", "super::super::kube::KubeSnapshot::default")
    );
    assert_eq!(
        found(
            "src/engine/mod.rs",
            "mod a {\n    mod b {\n        use super::super::super::store::X;\n    }\n}"
        ),
        one(3, "crate::store", "super::super::super::store::X")
    );
    assert_eq!(
        found(
            "src/engine/mod.rs",
            "mod a {}\nmod b { fn f() {} }\nuse super::runtime::X;"
        ),
        one(3, "crate::runtime", "super::runtime::X")
    );
    // What stays in the core, and what is no path at all.
    for (file, src) in [
        (
            "src/policy/compile/rings.rs",
            "use super::super::raw::*;\nuse super::super::*;",
        ),
        (
            "src/gate/tests/mod.rs",
            "use super::*;\nuse super::super::gate::Baseline;",
        ),
        (
            "src/domain/version.rs",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n}",
        ),
        (
            f,
            "use crate::domain::kube::X;\nlet k = ctx.facts.kube;\nc.kube.as_mut();",
        ),
        (
            f,
            "// use crate::store::Store;\n/// [`crate::arm::OperationRef`]\n//! tokio::spawn",
        ),
        (f, "/* use crate::store::Store; /* nested */ crate::api::x */ fn f() {}"),
        (
            f,
            "let s = \"crate::store::Store\"; let r = r#\"use tokio::x; \" crate::api::y\"#;",
        ),
        (
            f,
            "#[doc = \"crate::store::Store\"]\nconst C: char = '\"';\nfn g<'a>(x: &'a str) {}",
        ),
        (f, "let t = Self::kube; let v = Vec::<u8>::new(); <T as kube::X>::f;"),
    ] {
        let hits = found(file, src);
        if file == f && src.contains("<T as kube") {
            // `kube::X` after `as` is a path into the crate all the same.
            assert_eq!(hits, one(1, "kube", "kube::X"), "{src}");
        } else {
            assert!(hits.is_empty(), "{file}: {src:?} gave {hits:?}");
        }
    }
    // A string or a char literal does not hide what follows it.
    assert_eq!(
        found(f, "let s = \"// \\\" /*\"; let c = '\"'; use crate::api::x;"),
        one(1, "crate::api", "crate::api::x")
    );
    assert_eq!(
        found(f, "let b = b'\\''; use hyper::Body;"),
        one(1, "hyper", "hyper::Body")
    );
}

// ---- the scanner ----

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// A path of a core file that lands on the edge.
#[derive(Debug)]
struct Hit {
    line: usize,
    edge: String,
    path: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`, or any other single character.
    Punct(String),
    /// A string literal's contents (escapes left as written).
    Str(String),
    /// A number or a char literal.
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(q) if q == p)
    }
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Rust source as tokens, comments (doc comments too) dropped, string and char literals
/// kept whole so that nothing inside them reads as code or as a comment.
fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    s.push(c[i]);
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                s.push(at(i));
                i += 1;
            }
            i += 1;
            out.push(Token {
                tok: Tok::Str(s),
                line: start,
            });
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{1F600}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token { tok: Tok::Other, line });
            } else if at(i + 2) == '\'' && at(i + 1) != '\n' {
                i += 3;
                out.push(Token { tok: Tok::Other, line });
            } else {
                // A lifetime or a label.
                out.push(Token {
                    tok: Tok::Punct("'".into()),
                    line,
                });
                i += 1;
            }
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            let mut hashes = 0;
            while at(i + hashes) == '#' {
                hashes += 1;
            }
            if raw_prefix && at(i + hashes) == '"' {
                // A raw string: ends at `"` and as many `#`.
                let first = line;
                i += hashes + 1;
                let mut s = String::new();
                while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    s.push(c[i]);
                    i += 1;
                }
                i += 1 + hashes;
                out.push(Token {
                    tok: Tok::Str(s),
                    line: first,
                });
            } else if word == "r" && hashes == 1 && is_ident_start(at(i + 1)) {
                // A raw identifier: `r#type`.
                let s = i + 1;
                i += 1;
                while i < c.len() && is_ident_char(c[i]) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(c[s..i].iter().collect()),
                    line,
                });
            } else if (word == "b" || word == "c") && (at(i) == '"' || at(i) == '\'') {
                // b"..", c"..", b'.': the literal itself comes next.
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.push(Token { tok: Tok::Other, line });
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::Punct("::".into()),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch.to_string()),
                line,
            });
            i += 1;
        }
    }
    out
}

/// One segment of a path, with its line. A global path (`::tokio::x`) starts with `::`.
type SegPath = Vec<(String, usize)>;

/// The module of a file: `src/gate/tests/mod.rs` is `gate::tests`.
fn module_of(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut m: Vec<String> = rel.split('/').map(str::to_string).collect();
    if m.last().is_some_and(|l| l == "mod" || l == "lib" || l == "main") {
        m.pop();
    }
    m
}

/// The edge a path reaches from module `module`, and the line of the segment that names it.
fn classify(path: &SegPath, module: &[String]) -> Option<(String, usize)> {
    let first = path.first()?;
    if first.0 == "::" {
        let (krate, line) = path.get(1)?;
        return EDGE_CRATES.contains(&krate.as_str()).then(|| (krate.clone(), *line));
    }
    let rest: Vec<(String, usize)> = match first.0.as_str() {
        "crate" => path[1..].to_vec(),
        "self" | "super" => {
            let mut m: Vec<(String, usize)> = module.iter().map(|s| (s.clone(), first.1)).collect();
            let mut k = 0;
            while let Some((seg, _)) = path.get(k) {
                match seg.as_str() {
                    "super" => {
                        // Above the crate root does not compile; nothing to judge.
                        m.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                k += 1;
            }
            m.extend(path[k..].iter().cloned());
            m
        }
        krate => {
            return EDGE_CRATES.contains(&krate).then(|| (krate.to_string(), first.1));
        }
    };
    let (top, line) = rest.first()?;
    EDGE_MODULES
        .contains(&top.as_str())
        .then(|| (format!("crate::{top}"), *line))
}

fn joined(path: &SegPath) -> String {
    let mut s = String::new();
    for (k, (seg, _)) in path.iter().enumerate() {
        if k > 0 && path[k - 1].0 != "::" {
            s.push_str("::");
        }
        s.push_str(seg);
    }
    s
}

/// The paths of a use tree starting at `toks[*i]`, each with `prefix` before it.
fn use_tree(toks: &[Token], i: &mut usize, prefix: SegPath, out: &mut Vec<SegPath>) {
    let mut path = prefix;
    if toks.get(*i).is_some_and(|t| t.is("::")) {
        if path.is_empty() {
            path.push(("::".into(), toks[*i].line));
        }
        *i += 1;
    }
    while let Some(t) = toks.get(*i) {
        if let Some(name) = t.ident() {
            path.push((name.to_string(), t.line));
            *i += 1;
            if toks.get(*i).is_some_and(|t| t.is("::")) {
                *i += 1;
                continue;
            }
            if toks.get(*i).and_then(Token::ident) == Some("as") {
                *i += 2;
            }
            break;
        } else if t.is("{") {
            *i += 1;
            while let Some(t) = toks.get(*i) {
                if t.is("}") {
                    *i += 1;
                    break;
                }
                if t.is(",") {
                    *i += 1;
                    continue;
                }
                let before = *i;
                use_tree(toks, i, path.clone(), out);
                if *i == before {
                    *i += 1;
                }
            }
            return;
        } else {
            // `*`, or the end of the tree.
            if t.is("*") {
                *i += 1;
            }
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Keywords after which `::` starts a global path (`return ::tokio::spawn(..)`).
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "dyn", "else", "for", "if", "impl", "in", "let", "match", "move", "mut", "pub", "ref",
    "return", "static", "unsafe", "where", "while", "yield",
];

/// serde attributes whose string value is a path.
const STRING_PATH_KEYS: &[&str] = &[
    "with",
    "serialize_with",
    "deserialize_with",
    "default",
    "from",
    "try_from",
    "into",
    "remote",
    "getter",
];

/// Every path of `src` (the file `file`, relative to the package) that reaches the edge.
fn edges(file: &str, src: &str) -> Vec<Hit> {
    let toks = lex(src);
    let file_module = module_of(file);
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0;
    let mut paths: Vec<(SegPath, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let module = || {
            let mut m = file_module.clone();
            m.extend(inline.iter().map(|(n, _)| n.clone()));
            m
        };
        let t = &toks[i];
        let prev = i.checked_sub(1).map(|p| &toks[p]);
        let next = toks.get(i + 1);
        match &t.tok {
            Tok::Ident(w) if w == "use" => {
                let m = module();
                let mut found = Vec::new();
                i += 1;
                while i < toks.len() && !toks[i].is(";") {
                    let before = i;
                    use_tree(&toks, &mut i, Vec::new(), &mut found);
                    if i == before {
                        i += 1;
                    }
                }
                paths.extend(found.into_iter().map(|p| (p, m.clone())));
                continue;
            }
            Tok::Ident(w) if w == "extern" => {
                // `extern crate tokio;`
                if next.and_then(Token::ident) == Some("crate")
                    && let Some(name) = toks.get(i + 2).and_then(Token::ident)
                {
                    paths.push((
                        vec![("::".into(), t.line), (name.to_string(), toks[i + 2].line)],
                        module(),
                    ));
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), Some(open)) = (next.and_then(Token::ident), toks.get(i + 2))
                    && open.is("{")
                {
                    pending_mod = Some(name.to_string());
                }
            }
            Tok::Punct(p) if p == "{" => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            Tok::Punct(p) if p == "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Tok::Ident(w) => {
                let starts = !prev.is_some_and(|p| p.is("::") || p.is(".")) && next.is_some_and(|n| n.is("::"));
                if starts {
                    paths.push((code_path(&toks, i, vec![(w.clone(), t.line)]), module()));
                }
            }
            Tok::Punct(p) if p == "::" => {
                // After a name or a generic's `>` (`Vec::<u8>::new`), `::` goes on a path;
                // after a keyword, an arrow or an operator it starts a global one.
                let before_prev = i.checked_sub(2).map(|p| &toks[p]);
                let after_item = prev.is_some_and(|p| {
                    p.ident().is_some_and(|w| !KEYWORDS.contains(&w))
                        || (p.is(">") && !before_prev.is_some_and(|b| b.is("-") || b.is("=")))
                });
                if !after_item && next.and_then(Token::ident).is_some() {
                    paths.push((code_path(&toks, i + 1, vec![("::".into(), t.line)]), module()));
                }
            }
            Tok::Str(s) => {
                let key = i
                    .checked_sub(2)
                    .and_then(|k| toks[k].ident())
                    .filter(|k| STRING_PATH_KEYS.contains(k));
                if key.is_some() && prev.is_some_and(|p| p.is("=")) {
                    let path: SegPath = s.split("::").map(|seg| (seg.trim().to_string(), t.line)).collect();
                    if path
                        .iter()
                        .all(|(seg, _)| !seg.is_empty() && seg.chars().all(is_ident_char))
                    {
                        paths.push((path, module()));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    paths
        .into_iter()
        .filter_map(|(path, module)| {
            classify(&path, &module).map(|(edge, line)| Hit {
                line,
                edge,
                path: joined(&path),
            })
        })
        .collect()
}

/// `start` and the `::ident` segments after `toks[at]` (an identifier).
fn code_path(toks: &[Token], at: usize, start: SegPath) -> SegPath {
    let mut path = start;
    let mut j = at;
    if path.first().is_some_and(|(s, _)| s == "::") {
        path.push((toks[j].ident().unwrap().to_string(), toks[j].line));
    }
    while toks.get(j + 1).is_some_and(|t| t.is("::")) {
        match toks.get(j + 2).and_then(Token::ident) {
            Some(name) => {
                path.push((name.to_string(), toks[j + 2].line));
                j += 2;
            }
            None => break,
        }
    }
    path
}
