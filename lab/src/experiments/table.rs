//! The rows of an experiment: written as CSV (every column) and printed as
//! an aligned table (the columns worth reading at a glance).

use super::timed::Timed;
use anyhow::{Context, Result};
use std::fmt::Display;
use std::path::Path;

/// The columns that [`Row::timed`] fills.
pub const TIMED: [&str; 3] = ["median_s", "min_s", "max_s"];

pub struct Table {
    columns: Vec<&'static str>,
    /// Columns left out of the printed table (still in the CSV).
    csv_only: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// One row, built cell by cell in column order.
#[derive(Default)]
pub struct Row(Vec<String>);

impl Row {
    pub fn new() -> Self {
        Row::default()
    }

    pub fn cell(mut self, value: impl Display) -> Self {
        self.0.push(value.to_string());
        self
    }

    /// A number with `decimals` digits after the point.
    pub fn num(self, value: f64, decimals: usize) -> Self {
        self.cell(format!("{value:.decimals$}"))
    }

    /// The [`TIMED`] columns, to the microsecond (a thread starts in less
    /// than a tenth of a millisecond).
    pub fn timed<T>(self, t: &Timed<T>) -> Self {
        self.num(t.median, 6).num(t.min, 6).num(t.max, 6)
    }
}

/// One row of a [`Table`], its cells named by their columns.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    columns: &'a [&'static str],
    cells: &'a [String],
}

impl<'a> Record<'a> {
    pub fn text(&self, column: &str) -> Result<&'a str> {
        let i = self
            .columns
            .iter()
            .position(|c| *c == column)
            .with_context(|| format!("the table has no column {column}"))?;
        Ok(&self.cells[i])
    }

    pub fn num(&self, column: &str) -> Result<f64> {
        let cell = self.text(column)?;
        cell.parse()
            .with_context(|| format!("{column} is not a number: {cell:?}"))
    }
}

impl Table {
    pub fn new(columns: &[&'static str]) -> Self {
        Table {
            columns: columns.to_vec(),
            csv_only: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Leaves these columns out of the printed table.
    pub fn csv_only(mut self, columns: &[&'static str]) -> Self {
        self.csv_only = columns.to_vec();
        self
    }

    pub fn push(&mut self, row: Row) {
        assert_eq!(
            row.0.len(),
            self.columns.len(),
            "a row must fill every column"
        );
        self.rows.push(row.0);
    }

    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(&self.columns)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// The rows, to read cells by column name.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(|cells| Record {
            columns: &self.columns,
            cells,
        })
    }

    /// The indices of the printed columns.
    fn shown(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| !self.csv_only.contains(&self.columns[i]))
            .collect()
    }

    /// The printed columns as a Markdown table.
    pub fn markdown(&self) -> String {
        let shown = self.shown();
        let line = |cells: Vec<&str>| format!("| {} |\n", cells.join(" | "));
        let mut out = line(shown.iter().map(|&i| self.columns[i]).collect());
        out += &line(shown.iter().map(|_| "---").collect());
        for row in &self.rows {
            out += &line(shown.iter().map(|&i| row[i].as_str()).collect());
        }
        out
    }

    /// The printed table: text columns left-aligned, numbers right-aligned.
    pub fn render(&self) -> String {
        let shown = self.shown();
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].len())
                .chain([self.columns[i].len()])
                .max()
                .unwrap_or(0)
        };
        let numeric = |i: usize| self.rows.iter().all(|r| r[i].parse::<f64>().is_ok());
        let line = |cells: Vec<&str>| {
            let parts: Vec<String> = shown
                .iter()
                .zip(cells)
                .map(|(&i, c)| match numeric(i) {
                    true => format!("{c:>w$}", w = width(i)),
                    false => format!("{c:<w$}", w = width(i)),
                })
                .collect();
            parts.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(shown.iter().map(|&i| self.columns[i]).collect());
        for row in &self.rows {
            out += &line(shown.iter().map(|&i| row[i].as_str()).collect());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_and_hides_csv_only_columns() {
        let mut t = Table::new(&["method", "secret", "seconds"]).csv_only(&["secret"]);
        t.push(Row::new().cell("serial").cell("x").num(1.5, 2));
        t.push(Row::new().cell("redis").cell("y").num(12.25, 2));
        assert_eq!(
            t.render(),
            "method  seconds\nserial     1.50\nredis     12.25\n"
        );
    }

    #[test]
    fn reads_cells_by_column_and_writes_markdown() {
        let mut t = Table::new(&["method", "secret", "seconds"]).csv_only(&["secret"]);
        t.push(Row::new().cell("redis").cell("y").num(12.25, 2));
        let r = t.records().next().unwrap();
        assert_eq!(r.text("method").unwrap(), "redis");
        assert_eq!(r.num("seconds").unwrap(), 12.25);
        assert!(r.num("method").is_err());
        assert!(r.text("minutes").is_err());
        assert_eq!(
            t.markdown(),
            "| method | seconds |\n| --- | --- |\n| redis | 12.25 |\n"
        );
    }
}
