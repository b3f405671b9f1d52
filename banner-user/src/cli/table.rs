//! Aligned plain-text tables for human output.

/// Render rows under headers, columns padded to their widest cell, two spaces apart.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = Table::new(headers);
    for row in rows {
        for cell in row {
            table.cell(cell);
        }
    }
    let mut out = Vec::new();
    // Writing to memory cannot fail.
    let _ = table.write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A table built a cell at a time and printed once every width is known. The cells are
/// kept as one text with their lengths, not a string each: a million bans were 7 million
/// strings, 665 MB and a third of `banner list`'s time in page faults and allocation.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    widths: Vec<usize>,
    text: String,
    /// Length of every cell in `text`, row after row.
    lengths: Vec<u32>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            widths: headers.iter().map(|h| h.chars().count()).collect(),
            text: String::new(),
            lengths: Vec::new(),
        }
    }

    /// The next cell (rows fill left to right, then the next row begins).
    pub fn cell(&mut self, text: &str) {
        self.cell_with(|t| t.push_str(text));
    }

    /// The next cell, written into the table's text by `write`.
    pub fn cell_with(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        let cell = &self.text[start..];
        let width = if cell.is_ascii() {
            cell.len()
        } else {
            cell.chars().count()
        };
        let column = self.lengths.len() % self.widths.len().max(1);
        if let Some(w) = self.widths.get_mut(column) {
            *w = (*w).max(width);
        }
        self.lengths
            .push(u32::try_from(cell.len()).unwrap_or(u32::MAX));
    }

    pub fn rows(&self) -> usize {
        self.lengths.len() / self.widths.len().max(1)
    }

    /// The headers and every row, aligned.
    pub fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let columns = self.widths.len().max(1);
        let last = columns - 1;
        const SPACES: &[u8] = &[b' '; 64];
        let put = |out: &mut dyn std::io::Write, column: usize, cell: &str| {
            out.write_all(cell.as_bytes())?;
            if column == last {
                return out.write_all(b"\n");
            }
            let width = if cell.is_ascii() {
                cell.len()
            } else {
                cell.chars().count()
            };
            let mut pad = self.widths[column] - width + 2;
            while pad > 0 {
                let n = pad.min(SPACES.len());
                out.write_all(&SPACES[..n])?;
                pad -= n;
            }
            Ok(())
        };
        for (column, h) in self.headers.iter().enumerate() {
            put(out, column, h)?;
        }
        let mut at = 0;
        for (i, len) in self.lengths.iter().enumerate() {
            let end = at + *len as usize;
            put(out, i % columns, self.text.get(at..end).unwrap_or_default())?;
            at = end;
        }
        // A last row left short still ends its line.
        if !self.lengths.len().is_multiple_of(columns) {
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// "in 59m", "3m ago", for a timestamp relative to now.
pub fn relative(to: std::time::SystemTime, now: std::time::SystemTime) -> String {
    use crate::duration::format_duration;
    let coarse = |d: std::time::Duration| {
        // Seconds only matter for short spans.
        let secs = d.as_secs();
        let rounded = if secs >= 3_600 {
            secs - secs % 60
        } else {
            secs
        };
        format_duration(std::time::Duration::from_secs(rounded.max(1)))
    };
    match to.duration_since(now) {
        Ok(ahead) => format!("in {}", coarse(ahead)),
        Err(e) => format!("{} ago", coarse(e.duration())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn columns_line_up() {
        let out = render(
            &["IP", "JAIL"],
            &[
                vec!["198.18.0.1".into(), "sshd".into()],
                vec!["2001:db8::1".into(), "manual".into()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "IP           JAIL");
        assert_eq!(lines[1], "198.18.0.1   sshd");
        assert_eq!(lines[2], "2001:db8::1  manual");
    }

    #[test]
    fn a_table_built_cell_by_cell_lines_up_wide_characters_too() {
        let mut t = Table::new(&["USER", "N"]);
        assert_eq!(t.rows(), 0);
        t.cell("jürgen");
        t.cell_with(|s| s.push_str("12"));
        t.cell("ab");
        t.cell("3");
        assert_eq!(t.rows(), 2);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "USER    N\njürgen  12\nab      3\n"
        );
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(relative(now + Duration::from_secs(3_540), now), "in 59m");
        assert_eq!(relative(now - Duration::from_secs(90), now), "1m30s ago");
        assert_eq!(relative(now + Duration::from_secs(7_265), now), "in 2h1m");
    }
}
