//! Outside text made safe for a terminal or a log line.
//!
//! Names and messages come from files (policies, fleet files), from requests and from
//! ARM answers. Printed as they are, an ESC starts a terminal escape sequence (colours,
//! cursor moves, text hidden with `ESC[8m`), a CR or LF forges a log line of its own, and
//! a bidi override (U+202E) or an invisible character makes what is shown differ from what
//! is there. Everything that prints outside text sends it through [`escape`] (or
//! [`Escaped`]), which writes such characters visibly (`\x1b`, `\r`, `\n`, `\u{202e}`)
//! instead of dropping them: the reader sees that something odd was in the input.
//!
//! The backslash itself is left alone, so paths and messages stay readable; the escaped
//! form of a character is thus not told apart from the same text typed in: harmless for
//! a terminal, which is what this guards.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1),
/// bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+061C,
/// U+200E/U+200F), zero-width and other invisible format characters (U+200B-U+200D,
/// U+2060-U+2064, U+FEFF, U+180E), line and paragraph separators (U+2028, U+2029),
/// interlinear annotations (U+FFF9-U+FFFB) and tag characters (U+E0000-U+E007F).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// `s` with every [`is_unsafe`] character written visibly: `\n`, `\r`, `\t`, `\x1b`
/// (other characters below U+0100), `\u{202e}` (the rest). Borrowed when nothing needed it.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`escape`] of each line of `s`, keeping its line feeds: for text that is made of lines
/// on purpose (a report), where only what is inside a line may not break it. A CR is
/// escaped, so no line ends early or overwrites itself.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            c => push_escaped(&mut out, c),
        }
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if !is_unsafe(c) => out.push(c),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Displays its text [`escape`]d: `format!("ring `{}`", Escaped(&name))`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.0))
    }
}

/// JSON text (one serialized document) with the characters serde_json leaves raw but a
/// terminal would act on (bidi overrides, invisible characters, U+2028/U+2029: JSON only
/// requires escaping below U+0020) written as JSON `\uXXXX` escapes (surrogate pairs past
/// U+FFFF). The value is the same to any JSON reader; only what a person sees changes.
pub fn escape_json(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c >= ' ') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        // Below U+0020 serde_json has escaped them already; outside strings only the
        // layout's own newline can occur, which stays.
        if is_unsafe(c) && c >= ' ' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                use std::fmt::Write;
                let _ = write!(out, "\\u{u:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bidi_and_invisible_characters_are_shown_not_acted_on() {
        let hostile = "prod\u{1b}[31m\u{202e}evil\r\nFAKE\u{200b}\u{2066}\u{9b}\t";
        assert_eq!(
            escape(hostile),
            "prod\\x1b[31m\\u{202e}evil\\r\\nFAKE\\u{200b}\\u{2066}\\x9b\\t"
        );
        assert!(!escape(hostile).chars().any(is_unsafe));
        assert_eq!(escape_lines("a\u{1b}\nb\r\n"), "a\\x1b\nb\\r\n");
        assert_eq!(format!("[{:>6}]", Escaped("a\nb")), "[  a\\nb]");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["", "aks-prod-00001", "Zürich – 東京 ✓", "C:\\path\\x1b", "emoji 🚀"] {
            assert!(matches!(escape(s), Cow::Borrowed(t) if t == s), "{s}");
            assert!(matches!(escape_json(s), Cow::Borrowed(t) if t == s), "{s}");
        }
    }

    #[test]
    fn json_keeps_its_value_and_loses_the_overrides() {
        let v = "a\u{202e}b\u{e0041}\u{1b}";
        let json = serde_json_like(v);
        let escaped = escape_json(&json);
        assert_eq!(escaped, "\"a\\u202eb\\udb40\\udc41\\u001b\"");
    }

    /// What serde_json writes for a string (escapes below U+0020 only), without the dependency.
    fn serde_json_like(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            if c < ' ' {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
        }
        out.push('"');
        out
    }
}
