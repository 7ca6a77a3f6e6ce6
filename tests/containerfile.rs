//! The `Containerfile` that builds the image `examples/deploy` runs. No container engine
//! runs on the machines this project is built on, so the build itself is not run here;
//! this test checks what can be checked from the file: a build stage and a minimal
//! runtime stage without a shell, the non-root user the Deployment names, an exec-form
//! entrypoint at the binary, nothing copied that could hold a secret, and every file the
//! build reads (the crate, the lock file, the files compiled into the binary) in the
//! build context it copies.

use k8s_openapi::api::apps::v1::Deployment;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One instruction: its keyword (upper case) and the rest of its logical line.
#[derive(Debug)]
struct Instr {
    keyword: String,
    args: String,
}

/// The instructions, with comments dropped and `\` continuations joined.
fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (k, a) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
                out.push(Instr {
                    keyword: k.to_ascii_uppercase(),
                    args: a.trim().to_string(),
                });
                current.clear();
            }
        }
    }
    out
}

/// The stages: each a list of instructions starting with its FROM.
fn stages() -> Vec<Vec<Instr>> {
    let text = std::fs::read_to_string(root().join("Containerfile")).expect("a Containerfile at the root");
    let mut stages: Vec<Vec<Instr>> = Vec::new();
    for i in instructions(&text) {
        if i.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("the file starts with FROM").push(i);
    }
    stages
}

fn args_of<'a>(stage: &'a [Instr], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// COPY's sources and destination, without its `--flags`.
fn copy_parts(args: &str) -> (Vec<String>, String) {
    let mut words: Vec<String> = args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .map(String::from)
        .collect();
    let dest = words.pop().expect("COPY has a destination");
    (words, dest)
}

fn deployment() -> Deployment {
    let text = std::fs::read_to_string(root().join("examples/deploy/kubernetes/deployment.yaml")).unwrap();
    serde_saphyr::from_str(&text).expect("deployment.yaml is a Deployment")
}

#[test]
fn two_stages_and_the_runtime_one_has_no_shell() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "build, then runtime");
    let build_from = &stages[0][0].args;
    assert!(build_from.ends_with(" AS build"), "{build_from}");
    let runtime_from = &stages[1][0].args;
    assert!(
        runtime_from.starts_with("gcr.io/distroless/") || runtime_from == "scratch",
        "a minimal base without a shell: {runtime_from}"
    );
    assert!(
        args_of(&stages[1], "RUN").is_empty(),
        "nothing can RUN in an image without a shell"
    );
    let build = args_of(&stages[0], "RUN").join(" ");
    for flag in ["cargo build", "--release", "--locked"] {
        assert!(build.contains(flag), "the build runs `{flag}`: {build}");
    }
}

#[test]
fn runs_as_the_deployments_non_root_user_with_an_exec_form_entrypoint() {
    let stages = stages();
    let runtime = &stages[1];
    let user = args_of(runtime, "USER");
    assert_eq!(user.len(), 1, "one USER in the runtime stage");
    let (uid, gid) = user[0].split_once(':').expect("USER uid:gid");
    let (uid, gid): (i64, i64) = (uid.parse().expect("numeric uid"), gid.parse().expect("numeric gid"));
    assert!(uid > 0 && gid > 0, "non-root: {uid}:{gid}");

    let d = deployment();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let psc = pod.security_context.unwrap();
    assert_eq!((psc.run_as_user, psc.run_as_group), (Some(uid), Some(gid)));
    let container = &pod.containers[0];
    assert!(
        container.command.is_none(),
        "the Deployment keeps the image's entrypoint"
    );
    assert_eq!(container.args.as_deref(), Some(&["serve".to_string()][..]));
    let image = container.image.as_deref().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        image.contains(&format!("ringmaster:{version}")),
        "{image} is this version"
    );

    let entry = args_of(runtime, "ENTRYPOINT");
    assert_eq!(entry.len(), 1);
    let entry: Vec<String> = serde_json::from_str(entry[0]).expect("exec form: a JSON array, no shell");
    let copies = args_of(runtime, "COPY");
    assert_eq!(copies.len(), 1, "the runtime stage gets the binary and nothing else");
    assert!(copies[0].contains("--from=build"), "{}", copies[0]);
    let (_, dest) = copy_parts(copies[0]);
    assert_eq!(entry, [dest], "the entrypoint is the copied binary");
}

#[test]
fn the_build_copies_what_it_reads_and_nothing_that_holds_secrets() {
    let stages = stages();
    assert!(
        stages.iter().flatten().all(|i| i.keyword != "ADD"),
        "ADD fetches URLs and unpacks archives: COPY only"
    );
    let sources: Vec<String> = args_of(&stages[0], "COPY")
        .into_iter()
        .flat_map(|a| copy_parts(a).0)
        .collect();
    for s in &sources {
        assert!(root().join(s).exists(), "COPY {s}: not in the repository");
        let lower = s.to_ascii_lowercase();
        for bad in [
            "secret", "token", ".pem", ".key", ".der", ".env", "tests", ".git", "target",
        ] {
            assert!(!lower.contains(bad), "COPY {s} may carry secrets or test keys");
        }
        assert!(s != "." && !s.contains('*'), "COPY {s}: name what the build needs");
    }
    let covered = |path: &str| sources.iter().any(|s| path == s || path.starts_with(&format!("{s}/")));
    for needed in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        assert!(covered(needed), "the build needs {needed}");
    }
    // Every bench the manifest declares (cargo reads their paths) and every file that
    // `include_str!` compiles into the binary.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    if manifest.contains("[[bench]]") {
        assert!(covered("benches/rollout.rs"), "Cargo.toml declares benches");
    }
    let mut included = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for part in text.split("include_str!(\"").skip(1) {
                let rel = &part[..part.find('"').unwrap()];
                let abs = p.parent().unwrap().join(rel).canonicalize().unwrap();
                let rel = abs.strip_prefix(root()).unwrap().to_string_lossy().to_string();
                included.push(rel);
            }
        }
    }
    assert!(included.iter().any(|f| f == "policies/demo.yaml"), "{included:?}");
    for f in &included {
        assert!(
            covered(f),
            "{f} is compiled into the binary but not copied into the build"
        );
    }
}
