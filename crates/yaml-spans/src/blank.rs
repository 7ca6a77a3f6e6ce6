//! Removing one `key: value` entry from YAML text without moving anything else: the
//! entry's characters become spaces (newlines stay), so every later line and column is
//! where it was and the errors found after the removal still point into the user's file.
//!
//! This is how an unknown field stops being the end of checking (see
//! [`super::parse_reporting_unknown`]): serde stops at the first unknown field, so the
//! field is reported, blanked, and the document parsed again. The entry's extent is found
//! from the text, as YAML's own rules give it:
//! - in block style (the key is the first thing on its line, after any `- `), the entry is
//!   the rest of the key's line and every following line that is blank, a comment, more
//!   indented than the key, or a `- ` sequence entry at the key's own indentation (YAML
//!   lets a mapping's sequence value sit at the key's indentation);
//! - in flow style (`{ a: 1, key: 2 }`), the entry runs to the next `,` or closing bracket
//!   at its own nesting depth (outside quotes); its comma goes with it.
//!
//! The caller checks that the result still parses as YAML and gives up otherwise, so an
//! unusual layout costs the later errors, never a wrong one.

/// The byte offset of 1-based `line` and `column` (columns count characters), if inside `text`.
pub(super) fn offset_of(text: &str, line: u64, column: u64) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        let mut seen = 1u64;
        text.match_indices('\n')
            .find(|_| {
                seen += 1;
                seen == line
            })
            .map(|(i, _)| i + 1)?
    };
    let rest = &text[line_start..];
    let col = usize::try_from(column.max(1) - 1).ok()?;
    let in_line = rest.char_indices().nth(col).map(|(i, _)| i)?;
    (!rest[..in_line].contains('\n')).then_some(line_start + in_line)
}

/// `text` with the entry whose key starts at byte `key` blanked, or `None` when `key` is
/// not where a key can start.
pub(super) fn blank_entry(text: &str, key: usize) -> Option<String> {
    if key >= text.len() || !text.is_char_boundary(key) {
        return None;
    }
    let line_start = text[..key].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line_start..key];
    let block = prefix.chars().all(|c| c == ' ' || c == '-');
    let (start, end) = if block {
        (key, block_end(text, key, key - line_start))
    } else {
        flow_extent(text, key)?
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    for c in text[start..end].chars() {
        match c {
            '\n' | '\r' => out.push(c),
            _ => out.extend(std::iter::repeat_n(' ', c.len_utf8())),
        }
    }
    out.push_str(&text[end..]);
    Some(out)
}

/// The end (exclusive, before its newline) of a block entry whose key is at `indent`.
fn block_end(text: &str, key: usize, indent: usize) -> usize {
    let mut end = text[key..].find('\n').map_or(text.len(), |i| key + i);
    let mut pos = end;
    while pos < text.len() {
        let line_start = pos + 1;
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        let line = text[line_start..line_end].trim_end_matches('\r');
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let body = &line[spaces..];
        let ours = spaces > indent || (spaces == indent && (body == "-" || body.starts_with("- ")));
        // Blank lines and comments at the key's indentation or less may sit between our
        // lines or before the next entry: skipped, and blanked only if ours follow.
        if !(ours || body.is_empty() || body.starts_with('#')) {
            break;
        }
        if ours {
            end = line_end;
        }
        pos = line_end;
    }
    end
}

/// The byte range of a flow entry starting at `key`, with one adjoining comma.
fn flow_extent(text: &str, key: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = key;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(b'\'') if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => {
                    // The last entry: take the comma before it instead.
                    let before = text[..key].trim_end();
                    let start = if before.ends_with(',') { before.len() - 1 } else { key };
                    return Some((start, i));
                }
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => return Some((key, i + 1)),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(text: &str, line: u64, column: u64) -> String {
        blank_entry(text, offset_of(text, line, column).unwrap()).unwrap()
    }

    #[test]
    fn block_entries_go_with_their_nested_lines_and_nothing_else_moves() {
        let text = "a:\n  bogus:\n    - 1\n    - x: y\n  # note\n  b: 2\nc: 3\n";
        let out = blank(text, 2, 3);
        assert_eq!(out, "a:\n        \n       \n          \n  # note\n  b: 2\nc: 3\n");
        assert_eq!(out.len(), text.len());
        let seq = "k:\n  bogus:\n  - 1\n  - 2\n  b: 2\n";
        assert_eq!(blank(seq, 2, 3), "k:\n        \n     \n     \n  b: 2\n");
        let item = "rings:\n- bogus: 1\n  name: x\n- name: y\n";
        assert_eq!(blank(item, 2, 3), "rings:\n-         \n  name: x\n- name: y\n");
    }

    #[test]
    fn flow_entries_take_one_comma() {
        let blanked = format!("s: {{ a: 1{}}}\n", " ".repeat(", bogus: [1, 2] ".len()));
        assert_eq!(blank("s: { a: 1, bogus: [1, 2] }\n", 1, 12), blanked);
        assert_eq!(blank("s: { bogus: '}', a: 1 }\n", 1, 6), "s: {             a: 1 }\n");
        assert_eq!(blank("s: { bogus: 1 }\n", 1, 6), "s: {          }\n");
    }

    #[test]
    fn positions_count_characters_and_stay_inside_the_text() {
        let text = "é: 1\nbogus: 2\n";
        assert_eq!(offset_of(text, 2, 1), Some(6));
        assert_eq!(offset_of(text, 1, 2), Some(2));
        assert_eq!(offset_of(text, 9, 1), None);
        assert_eq!(offset_of(text, 1, 40), None);
        assert_eq!(blank_entry(text, 1), None, "inside a character");
        assert_eq!(blank_entry(text, 99), None);
    }
}
