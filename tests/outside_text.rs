//! Text from files reaches terminals and logs escaped (issue 26, finding 5): a policy
//! whose names hold ESC `[31m`, U+202E and CR/LF (`tests/hostile_inputs/terminal-escapes*.yaml`)
//! goes through the real binary, and what it prints must hold none of those characters
//! raw, only their escaped forms (`\x1b`, `\u{202e}`, `\r`, `\n`). The escaping itself
//! and the log writer are unit-tested in `yaml_spans::text` and `ringmaster::text`.

mod common;

use common::procs::{bin, ringmaster, start_sim};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hostile(name: &str) -> String {
    format!("{}/tests/hostile_inputs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The raw characters that must never be printed, with what they are.
const RAW: [(char, &str); 6] = [
    ('\u{1b}', "ESC"),
    ('\u{202e}', "U+202E"),
    ('\r', "CR"),
    ('\u{2066}', "U+2066"),
    ('\u{200b}', "U+200B"),
    ('\u{9b}', "CSI"),
];

fn assert_no_raw(what: &str, text: &str) {
    for (c, name) in RAW {
        assert!(!text.contains(c), "{what} holds a raw {name}: {text:?}");
    }
}

fn validate(file: &str) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .args(["validate", &hostile(file)])
        .env("RINGMASTER_LOG", "info")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_no_raw("stdout", &stdout);
    assert_no_raw("stderr", &stderr);
    (out.status.code(), stdout, stderr)
}

/// The issue's case: the compiler refuses the ring name and quotes it in its diagnostic.
#[test]
fn validate_shows_a_hostile_ring_name_escaped_in_its_diagnostic() {
    let (code, stdout, stderr) = validate("terminal-escapes.yaml");
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    // One line: the name's LF did not start a forged one.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains(r"ring name `dev\x1b[31m\u{202e}ved\r\nfake line\u{2066}\u{200b}` may only hold"),
        "{stdout}"
    );
}

/// A valid policy: its name is printed in the `ok` line.
#[test]
fn validate_shows_a_hostile_policy_name_escaped_in_its_ok_line() {
    let (code, stdout, stderr) = validate("terminal-escapes-name.yaml");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains(r"ok (policy `evil\x1b[31m\u{202e}policy\r\nFORGED: all clusters upgraded`"),
        "{stdout}"
    );
}

/// `serve` logs the policy's name when SIGHUP makes it re-read the file: the JSON log
/// line (stderr is not a terminal) stays one line of JSON holding the name, with no raw
/// bidi override (serde_json leaves those as they are) or control character.
#[test]
fn serve_logs_a_policy_name_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), "60");
    let hash = ringmaster::api::auth::token_digest_hex("a-token-nobody-uses");
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!("tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {hash}\n"),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let state = dir.path().join("state.db").display().to_string();
    let tokens = dir.path().join("tokens.yaml").display().to_string();
    let policy = hostile("terminal-escapes-name.yaml");
    let mut serve = ringmaster(
        &sim,
        &[
            "serve",
            "--policy",
            &policy,
            "--state",
            &state,
            "--listen",
            "127.0.0.1:0",
            "--sim-clock",
            "--tokens-file",
            &tokens,
            "--operator-group",
            "platform-admins",
        ],
    )
    .env("RINGMASTER_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    // The listen line: serve is up and its SIGHUP handler installed.
    let mut stdout = serve.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("serve's listen line");
    std::thread::sleep(Duration::from_millis(300));
    let hup = Command::new("kill")
        .args(["-HUP", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("policy re-read") || start.elapsed() > Duration::from_secs(20) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert_no_raw("serve's log", &text);
    let line = text
        .lines()
        .find(|l| l.contains("policy re-read"))
        .unwrap_or_else(|| panic!("no `policy re-read` line: {text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(
        v["fields"]["policy"], "evil\u{1b}[31m\u{202e}policy\r\nFORGED: all clusters upgraded",
        "{line}"
    );
    assert!(line.contains(r"\u202e") && line.contains(r"\u001b"), "{line}");
    // Every line of the log is one JSON object: no value broke out of its line.
    for l in text.lines() {
        assert!(serde_json::from_str::<serde_json::Value>(l).is_ok(), "not JSON: {l:?}");
    }
}
