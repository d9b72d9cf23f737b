//! Plain-text tables and number formatting for the reports.

use std::fmt;
use std::time::Duration;

/// A text table: the first column left-aligned, the others right-aligned, a rule under the
/// header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, row: &[String]| -> fmt::Result {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    out.push_str("  ");
                }
                if i == 0 {
                    out.push_str(&format!("{cell:<width$}"));
                } else {
                    out.push_str(&format!("{cell:>width$}"));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(f, &self.header)?;
        let rule: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
        writeln!(f, "{}", "-".repeat(rule))?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// `1234567` → `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..first].to_string();
    for group in digits.as_bytes()[first..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    out
}

/// A rate rounded to a whole number, with thousands separators.
pub fn rate(per_sec: f64) -> String {
    if per_sec.is_finite() && per_sec >= 0.0 {
        int(per_sec.round() as u64)
    } else {
        "-".to_string()
    }
}

/// Milliseconds: two decimals under 10 ms, one under 1 s, none above.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        int(ms.round() as u64)
    }
}

/// The one-line latency summary both reports print.
pub fn latency_line(l: &super::stats::LatencySummary) -> String {
    if l.count == 0 {
        return "latency ms    - (no answers)".to_string();
    }
    format!(
        "latency ms    p50 {}   p99 {}   max {}  ({} answers)",
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        int(l.count as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(rate(12_345.6), "12,346");
        assert_eq!(rate(f64::NAN), "-");
        assert_eq!(ms(Duration::from_micros(1234)), "1.23");
        assert_eq!(ms(Duration::from_micros(45_678)), "45.7");
        assert_eq!(ms(Duration::from_millis(12_345)), "12,345");
    }

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(["workload", "ok"]);
        t.row(["W1", "10"]);
        t.row(["W2 hot SKU", "123,456"]);
        assert_eq!(
            t.to_string(),
            "workload         ok\n\
             -------------------\n\
             W1               10\n\
             W2 hot SKU  123,456\n"
        );
    }
}
