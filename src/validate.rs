//! `ringmaster validate FILE...`: compiles each policy file and reports every error of
//! every file at once. The caller prints the report and exits 0 when `ok`, 2 otherwise.
//! (The file reading lives here so that `policy` itself stays free of I/O.)

use crate::yaml::text::Escaped;
use std::path::Path;

/// Compiles every file; returns the report (one `file: ok ...` line per valid file, every
/// `file:line:col: message` of the invalid ones) and whether all were valid. Names from
/// the files (and the paths) are escaped: the report goes to a terminal or a CI log.
pub fn validate_files<P: AsRef<Path>>(paths: &[P]) -> (String, bool) {
    let mut report = String::new();
    let mut ok = true;
    if paths.is_empty() {
        return ("no policy files given\n".into(), false);
    }
    for path in paths {
        let file = path.as_ref().display().to_string();
        let outcome = std::fs::read_to_string(path.as_ref())
            .map_err(|e| format!("{}:0:0: cannot read: {e}", Escaped(&file)))
            .and_then(|text| crate::policy::compile(&file, &text).map_err(|e| e.to_string()));
        match outcome {
            Ok(p) => {
                let rings: Vec<String> = p.rings.iter().map(|r| Escaped(&r.name).to_string()).collect();
                report.push_str(&format!(
                    "{}: ok (policy `{}`, channel {}, rings {})\n",
                    Escaped(&file),
                    Escaped(&p.name),
                    p.target.channel.name(),
                    rings.join(" -> ")
                ));
            }
            Err(e) => {
                ok = false;
                report.push_str(&e);
                report.push('\n');
            }
        }
    }
    (report, ok)
}
