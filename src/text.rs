//! Outside text on terminals and in logs: the escaping itself lives in
//! `yaml_spans::text` (so the simulator's fleet errors use it too) and is re-exported
//! here; this module adds the log writer that applies it to every log line at once.

use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;

pub use yaml_spans::text::{Escaped, escape, escape_json, escape_lines, is_unsafe};

/// Appends one line to a text report: `args` formatted and [`escape`]d whole (a newline
/// inside is a value's, so it is shown as `\n`), then the line's own newline. Used through
/// [`safe_writeln!`](crate::safe_writeln) by the table renderers, whose lines quote names
/// from policies and ARM.
pub fn push_line<W: std::fmt::Write>(out: &mut W, args: std::fmt::Arguments<'_>) -> std::fmt::Result {
    let line = args.to_string();
    out.write_str(&escape(&line))?;
    out.write_char('\n')
}

/// `writeln!` for reports of outside text: the line is escaped ([`push_line`]).
#[macro_export]
macro_rules! safe_writeln {
    ($out:expr) => {
        $crate::text::push_line(&mut $out, format_args!(""))
    };
    ($out:expr, $($arg:tt)*) => {
        $crate::text::push_line(&mut $out, format_args!($($arg)*))
    };
}

/// `text` wrapped at `width` columns, the first line indented by `first`, the others
/// by `rest`.
/// The text is [`escape`]d first: it quotes names from files and answers.
pub fn wrap(text: &str, width: usize, first: usize, rest: usize) -> String {
    let text = escape(text);
    let mut out = " ".repeat(first);
    let mut line = String::new();
    for word in text.split_whitespace() {
        let room = if out.contains('\n') {
            width - rest
        } else {
            width - first
        };
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&" ".repeat(rest));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// How the log lines a [`SafeLogs`] writes are formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// tracing's text lines (a terminal): every unsafe character of the line is
    /// escaped, the final newline kept. The formatter must run without ANSI colours: the
    /// writer cannot tell its escape sequences from ones inside a logged value, and a
    /// value's `ESC[8m` would hide the rest of the line.
    Text,
    /// One JSON object per line: serde_json escapes control characters already; bidi
    /// and invisible characters become `\uXXXX`, which leaves every value as it was.
    Json,
}

/// A `MakeWriter` that escapes outside text in whole log lines before they reach
/// `inner`, so that no call site has to remember to: a value from a file, a request or
/// ARM (a ring name, an error message quoting one) cannot forge a line or act on the
/// terminal. tracing's formatter writes each event in one `write_all`; the writer
/// buffers what it is given and writes it out escaped when the event is done (drop).
#[derive(Debug, Clone)]
pub struct SafeLogs<M> {
    inner: M,
    format: LogFormat,
}

impl<M> SafeLogs<M> {
    pub fn new(inner: M, format: LogFormat) -> Self {
        Self { inner, format }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for SafeLogs<M> {
    type Writer = SafeLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        SafeLine {
            inner: self.inner.make_writer(),
            format: self.format,
            line: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        SafeLine {
            inner: self.inner.make_writer_for(meta),
            format: self.format,
            line: Vec::new(),
        }
    }
}

/// One event's text, written escaped to the inner writer on flush or drop.
pub struct SafeLine<W: Write> {
    inner: W,
    format: LogFormat,
    line: Vec<u8>,
}

impl<W: Write> SafeLine<W> {
    fn emit(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let raw = String::from_utf8_lossy(&self.line);
        let (body, newline) = match raw.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*raw, ""),
        };
        let safe = match self.format {
            LogFormat::Text => escape(body),
            LogFormat::Json => escape_json(body),
        };
        let mut out = String::with_capacity(safe.len() + 1);
        out.push_str(&safe);
        out.push_str(newline);
        self.line.clear();
        self.inner.write_all(out.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Write for SafeLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The formatter does not flush mid-event; flushing here would split a line in
        // two, so the line waits for the drop.
        Ok(())
    }
}

impl<W: Write> Drop for SafeLine<W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the wrapped writer is given.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const HOSTILE: &str = "prod\u{1b}[31m\u{202e}lave\r\n2026-12-07T00:00:00Z  INFO forged line";

    fn logged(format: LogFormat) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let writer = SafeLogs::new(move || out.clone(), format);
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        let dispatch = match format {
            LogFormat::Text => tracing::Dispatch::new(builder.finish()),
            LogFormat::Json => tracing::Dispatch::new(builder.json().finish()),
        };
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(ring = %HOSTILE, "policy re-read: {HOSTILE}");
            tracing::warn!("second");
        });
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_lines_show_control_and_bidi_characters_escaped_one_event_a_line() {
        let text = logged(LogFormat::Text);
        assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{text:?}");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("prod\\x1b[31m\\u{202e}lave\\r\\n2026"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn json_lines_stay_json_with_the_same_values() {
        let text = logged(LogFormat::Json);
        assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{text:?}");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["fields"]["ring"], HOSTILE);
        assert!(text.contains("\\u202e"), "{text}");
    }
}
