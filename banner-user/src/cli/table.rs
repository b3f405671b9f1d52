//! Aligned plain-text tables for human output.

/// Render rows under headers, columns padded to their widest cell, two spaces apart.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i != last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
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
    fn relative_times_read_naturally() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(relative(now + Duration::from_secs(3_540), now), "in 59m");
        assert_eq!(relative(now - Duration::from_secs(90), now), "1m30s ago");
        assert_eq!(relative(now + Duration::from_secs(7_265), now), "in 2h1m");
    }
}
