//! The policies one daemon runs: one file (`serve --policy FILE`) or every `*.yaml` /
//! `*.yml` of a directory (`serve --policies DIR`), each with its own schedule and at
//! most one rollout at a time. Read at start and again on SIGHUP.
//!
//! A file that stops compiling is reported (log, and `GET /api/v1/policies`) and its
//! last good version stays in force: a typo in one cadence must not silently stop it,
//! nor stop the others. A rollout keeps the policy text it started with whatever
//! happens to its file.

use crate::embedded::PolicySource;
use crate::policy::Policy;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the policies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySet {
    File(PathBuf),
    Dir(PathBuf),
}

/// One policy in force.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub source: PolicySource,
    pub policy: Arc<Policy>,
    /// The file's current text does not compile (or cannot be read): this is its last
    /// good version, and this is why.
    pub error: Option<String>,
}

/// A policy as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub name: String,
    pub file: String,
    pub priority: i32,
    pub on_busy: crate::policy::OnBusy,
    /// The start cron, if any (`schedule.start`).
    pub start: Option<String>,
    /// Set when the file's text does not compile: the last good version is in force.
    pub error: Option<String>,
}

/// The policies in force, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    by_name: Mutex<BTreeMap<String, Loaded>>,
    /// Files that never compiled (nothing in force for them), with why.
    broken: Mutex<BTreeMap<PathBuf, String>>,
}

impl PolicySet {
    /// The files to read, sorted (a directory's `*.yaml` and `*.yml`, not recursive).
    pub fn files(&self) -> Result<Vec<PathBuf>, String> {
        match self {
            PolicySet::File(p) => Ok(vec![p.clone()]),
            PolicySet::Dir(d) => {
                let entries = std::fs::read_dir(d).map_err(|e| format!("reading {}: {e}", d.display()))?;
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(format!("{} holds no policy (*.yaml)", d.display()));
                }
                Ok(files)
            }
        }
    }
}

fn read(path: &Path) -> Result<(PolicySource, Policy), String> {
    let source = PolicySource::read(path).map_err(|e| format!("{e:#}"))?;
    let policy = crate::policy::compile(&source.name, &source.text).map_err(|e| e.to_string())?;
    Ok((source, policy))
}

impl Catalog {
    /// Reads every file of `set`; returns the problems found (also kept for the API).
    /// Two files may not use one policy name: the second is refused.
    pub fn reload(&self, set: &PolicySet) -> Vec<String> {
        let files = match set.files() {
            Ok(f) => f,
            Err(e) => return vec![e],
        };
        let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let mut broken = BTreeMap::new();
        let mut next: BTreeMap<String, Loaded> = BTreeMap::new();
        for path in &files {
            match read(path) {
                Ok((source, policy)) => {
                    if let Some(other) = next.get(&policy.name) {
                        broken.insert(
                            path.clone(),
                            format!(
                                "{}: policy name `{}` is already used by {}",
                                path.display(),
                                policy.name,
                                other.path.display()
                            ),
                        );
                        continue;
                    }
                    next.insert(
                        policy.name.clone(),
                        Loaded {
                            path: path.clone(),
                            source,
                            policy: Arc::new(policy),
                            error: None,
                        },
                    );
                }
                Err(e) => {
                    // The last good version of this file stays in force, if it had one.
                    match by_name.values().find(|l| &l.path == path) {
                        Some(old) if !next.contains_key(&old.policy.name) => {
                            let mut kept = old.clone();
                            kept.error = Some(e);
                            next.insert(kept.policy.name.clone(), kept);
                        }
                        _ => {
                            broken.insert(path.clone(), e);
                        }
                    }
                }
            }
        }
        *by_name = next;
        let mut problems: Vec<String> = by_name
            .values()
            .filter_map(|l| {
                l.error
                    .as_ref()
                    .map(|e| format!("{e}\n(its last good version stays in force)"))
            })
            .collect();
        problems.extend(broken.values().cloned());
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = broken;
        problems
    }

    /// The policies in force, highest priority first (then by name): who starts first
    /// when several are due at once.
    pub fn in_force(&self) -> Vec<Loaded> {
        let mut all: Vec<Loaded> = self
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.policy
                .priority
                .cmp(&a.policy.priority)
                .then(a.policy.name.cmp(&b.policy.name))
        });
        all
    }

    pub fn get(&self, name: &str) -> Option<Loaded> {
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// For the API: every policy in force, then the files with nothing in force.
    pub fn views(&self) -> Vec<PolicyView> {
        let mut out: Vec<PolicyView> = self
            .in_force()
            .into_iter()
            .map(|l| PolicyView {
                name: l.policy.name.clone(),
                file: l.path.display().to_string(),
                priority: l.policy.priority,
                on_busy: l.policy.on_busy,
                start: l
                    .policy
                    .schedule
                    .start
                    .as_ref()
                    .map(|c| format!("{} ({})", c.expr(), c.time_zone())),
                error: l.error.clone(),
            })
            .collect();
        for (path, e) in self.broken.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push(PolicyView {
                name: String::new(),
                file: path.display().to_string(),
                priority: 0,
                on_busy: Default::default(),
                start: None,
                error: Some(e.clone()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, priority: i32) -> String {
        format!(
            "name: {name}\npriority: {priority}\ntarget: {{ channel: node-image }}\nrings:\n  - name: all\n    selector: {{ tags: {{ ring: dev }} }}\n    waves: [{{ name: all, max_parallel: 1 }}]\n"
        )
    }

    #[test]
    fn a_directory_reloads_keeping_the_last_good_version_of_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), policy("images", 1)).unwrap();
        std::fs::write(dir.path().join("b.yml"), policy("versions", 5)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
        let set = PolicySet::Dir(dir.path().to_path_buf());
        let c = Catalog::default();
        assert!(c.reload(&set).is_empty());
        let names: Vec<String> = c.in_force().iter().map(|l| l.policy.name.clone()).collect();
        assert_eq!(names, ["versions", "images"], "highest priority first");

        std::fs::write(dir.path().join("a.yaml"), "name: images\ntarget: {").unwrap();
        std::fs::write(dir.path().join("c.yaml"), policy("versions", 0)).unwrap();
        let problems = c.reload(&set);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("already used by")), "{problems:?}");
        let images = c.get("images").expect("the last good version stays");
        assert!(images.error.is_some());
        assert_eq!(images.policy.priority, 1);
        assert_eq!(c.views().len(), 3, "two in force, one refused");
    }
}
