//! YAML input with positions: every error a user sees names `file:line:col`.
//! Shared by the fleet file (simulator), rollout policies and the service configuration.

mod blank;
pub mod duration;
pub mod text;

use serde::de::{DeserializeOwned, IgnoredAny};
use std::fmt;
use std::path::Path;

pub use serde_saphyr::Spanned;

/// One problem in an input file, at a position (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Shown with the file name and message [`text::escape`]d: both may quote the input
/// (a ring name, an unknown key), which must not act on the terminal or the log.
impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            text::Escaped(&self.file),
            self.line,
            self.column,
            text::Escaped(&self.message)
        )
    }
}

/// Every problem found in one file, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

/// Collects errors against one file while a compile step walks it.
#[derive(Debug)]
pub struct Diagnostics {
    file: String,
    errors: Vec<SourceError>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            errors: Vec::new(),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Records an error at the position of a spanned value.
    pub fn at<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.at_location(at.referenced, message);
    }

    /// Records an error at a location. A problem with no place of its own (a section
    /// that is missing altogether) is about the whole document: it is reported at 1:1,
    /// so that every error names a line an editor can jump to.
    pub fn at_location(&mut self, loc: serde_saphyr::Location, message: impl Into<String>) {
        let (line, column) = match loc.line() {
            0 => (1, 1),
            line => (line, loc.column().max(1)),
        };
        self.errors.push(SourceError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every error, in file order.
    pub fn finish<T>(mut self, value: T) -> Result<T, SourceErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            self.errors.sort_by_key(|e| (e.line, e.column));
            Err(SourceErrors(self.errors))
        }
    }
}

/// Parses YAML into `T` (whose types should deny unknown fields); a syntax or shape
/// error comes back with its position, together with every unknown field.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, SourceErrors> {
    match parse_reporting_unknown(file, text)? {
        (value, unknown) if unknown.is_empty() => Ok(value),
        (_, unknown) => Err(SourceErrors(unknown)),
    }
}

/// How many unknown fields one file may have before checking stops (each costs a parse).
const MAX_UNKNOWN_FIELDS: usize = 100;

/// Parses YAML into `T` (whose types deny unknown fields), going on past unknown fields:
/// each is reported at its key, blanked out of the text ([`blank`]) and the text parsed
/// again, so that the caller can check what remains and report everything in one run
/// (serde alone stops at the first). `Ok((value, unknown_fields))` when the rest parses;
/// `Err` (the unknown fields so far and the error that stopped parsing) otherwise.
pub fn parse_reporting_unknown<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(T, Vec<SourceError>), SourceErrors> {
    let options = || serde_saphyr::options! { with_snippet: false };
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut unknown = Vec::new();
    loop {
        let e = match serde_saphyr::from_str_with_options::<T>(&text, options()) {
            Ok(v) => return Ok((v, unknown)),
            Err(e) => e,
        };
        let fatal = |mut unknown: Vec<SourceError>, e: Option<&serde_saphyr::Error>| {
            unknown.extend(e.map(|e| source_error(file, e)));
            unknown.sort_by_key(|e| (e.line, e.column));
            Err(SourceErrors(unknown))
        };
        let serde_saphyr::Error::SerdeUnknownField { location, .. } = &e else {
            return fatal(unknown, Some(&e));
        };
        unknown.push(source_error(file, &e));
        if unknown.len() >= MAX_UNKNOWN_FIELDS {
            return fatal(unknown, None);
        }
        let blanked = blank::offset_of(&text, location.line(), location.column())
            .and_then(|at| blank::blank_entry(&text, at))
            .filter(|t| serde_saphyr::from_str_with_options::<IgnoredAny>(t, options()).is_ok());
        match blanked {
            Some(t) => text = std::borrow::Cow::Owned(t),
            // The layout defeated the blanking: what was found stands, the rest is unchecked.
            None => return fatal(unknown, None),
        }
    }
}

/// The parser's error with its position; one without (an empty document, say) is about
/// the whole document and shows at 1:1, as in [`Diagnostics::at_location`].
fn source_error(file: &str, e: &serde_saphyr::Error) -> SourceError {
    let (line, column) = e
        .location()
        .filter(|l| l.line() > 0)
        .map_or((1, 1), |l| (l.line(), l.column().max(1)));
    SourceError {
        file: file.to_string(),
        line,
        column,
        message: strip_position(&e.to_string()),
    }
}

/// Reads a file to parse: `(file name for errors, text)`, or "cannot read" (line 0: the
/// problem is the file, not a place in it).
pub fn read(path: &Path) -> Result<(String, String), SourceErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(SourceErrors(vec![SourceError {
            file,
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }])),
    }
}

/// The outcome of checking what [`parse_reporting_unknown`] returned, refused as well
/// when unknown fields were found: every error of both, in file order.
pub fn with_unknown<T>(checked: Result<T, SourceErrors>, unknown: Vec<SourceError>) -> Result<T, SourceErrors> {
    match checked {
        Ok(v) if unknown.is_empty() => Ok(v),
        Ok(_) => Err(SourceErrors(unknown)),
        Err(SourceErrors(mut errors)) => {
            errors.extend(unknown);
            errors.sort_by_key(|e| (e.line, e.column));
            Err(SourceErrors(errors))
        }
    }
}

/// The parser appends " at line L column C" to its messages; the position is
/// already in front of ours, so drop the repeat.
fn strip_position(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: u32,
        b: Option<u32>,
    }

    fn shown(e: &SourceErrors) -> Vec<String> {
        e.0.iter().map(|e| e.to_string()).collect()
    }

    /// serde stops at the first unknown field; every one is found, in file order, and
    /// the value is what the known fields say.
    #[test]
    fn every_unknown_field_is_reported_and_the_rest_still_parses() {
        let text = "name: x\nbogus: [1, 2]\ninner:\n  - a: 1\n    zz: { deep: [1] }\n  - { a: 2, yy: 3, b: 4 }\n";
        let (v, unknown) = parse_reporting_unknown::<Outer>("f.yaml", text).unwrap();
        assert_eq!(
            v,
            Outer {
                name: "x".into(),
                inner: vec![Inner { a: 1, b: None }, Inner { a: 2, b: Some(4) }],
            }
        );
        let got: Vec<String> = unknown.iter().map(|e| e.to_string()).collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("f.yaml:2:1: unknown field `bogus`"), "{got:#?}");
        assert!(got[1].starts_with("f.yaml:5:5: unknown field `zz`"), "{got:#?}");
        assert!(got[2].starts_with("f.yaml:6:13: unknown field `yy`"), "{got:#?}");
        // The strict form refuses the same text with the same errors.
        let strict = parse::<Outer>("f.yaml", text).unwrap_err();
        assert_eq!(shown(&strict), got);
    }

    /// An unknown field that was the only thing there leaves a hole: the error that
    /// follows (an empty list item, a missing field) is reported too, after it.
    #[test]
    fn a_stopping_error_comes_with_the_unknown_fields_before_it() {
        let text = "name: x\ninner:\n  - aa: 1\n";
        let e = parse_reporting_unknown::<Outer>("f.yaml", text).unwrap_err();
        let got = shown(&e);
        assert!(got[0].starts_with("f.yaml:3:5: unknown field `aa`"), "{got:#?}");
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[1].starts_with("f.yaml:3:"), "{got:#?}");
        let text = "name: x\ninner:\n  - b: 1\n    aa: 1\n";
        let got = shown(&parse_reporting_unknown::<Outer>("f.yaml", text).unwrap_err());
        assert_eq!(
            got,
            [
                "f.yaml:3:5: missing field `a`",
                "f.yaml:4:5: unknown field `aa`, expected one of a, b"
            ]
        );
    }

    /// Every error names a line, even for a document with nothing in it.
    #[test]
    fn errors_about_the_whole_document_show_at_its_top() {
        for text in ["", "# only a comment\n", "---\n", "~\n"] {
            let e = parse::<Outer>("f.yaml", text).unwrap_err();
            assert!(e.0.iter().all(|e| e.line >= 1 && e.column >= 1), "{text:?}: {e}");
        }
    }

    /// When blanking would break the YAML (here an anchor the rest refers to), checking
    /// stops with what was found: never a wrong error.
    #[test]
    fn blanking_that_would_break_the_text_stops_cleanly() {
        let text = "bogus: &n x\nname: *n\n";
        let e = parse_reporting_unknown::<Outer>("f.yaml", text).unwrap_err();
        let got = shown(&e);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("f.yaml:1:1: unknown field `bogus`"), "{got:#?}");
    }
}
