//! Line charts as PNG: one figure of one or more panels side by side, each
//! with labelled axes and a legend. Text uses the embedded DejaVu Sans, so a
//! machine without fonts or fontconfig draws the same picture.

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

pub const SIZE: (u32, u32) = (1024, 640);

/// One line: a name for the legend and its (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Small dots, unjoined: a cloud of many points (a stream's files).
    pub dots: bool,
}

/// A vertical line across a panel at `x`, labelled at its top (an event
/// in time, a threshold).
pub struct Marker {
    pub x: f64,
    pub label: String,
}

/// A shaded span of x across a panel, labelled at its top (a fault that
/// lasts: a partition).
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// One panel.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    /// Tick labels of the x axis (e.g. byte sizes); plain numbers otherwise.
    pub x_format: fn(f64) -> String,
    /// The y axis reaches at least this high (e.g. 1 for an efficiency);
    /// otherwise it fits the data (from 0 on a linear axis).
    pub y_at_least: f64,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    pub bands: Vec<Band>,
}

impl Chart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_log: false,
            y_log: false,
            x_format: number,
            y_at_least: 0.0,
            series: Vec::new(),
            markers: Vec::new(),
            bands: Vec::new(),
        }
    }

    /// The series called `name`, added if new.
    pub fn series(&mut self, name: &str) -> &mut Vec<(f64, f64)> {
        self.series_of(name, false)
    }

    /// The series called `name`, drawn as unjoined dots, added if new.
    pub fn dots(&mut self, name: &str) -> &mut Vec<(f64, f64)> {
        self.series_of(name, true)
    }

    /// A vertical marker at `x`.
    pub fn mark(&mut self, x: f64, label: impl Into<String>) {
        self.markers.push(Marker {
            x,
            label: label.into(),
        });
    }

    /// A shaded band from `from` to `to`.
    pub fn shade(&mut self, from: f64, to: f64, label: impl Into<String>) {
        self.bands.push(Band {
            from,
            to,
            label: label.into(),
        });
    }

    fn series_of(&mut self, name: &str, dots: bool) -> &mut Vec<(f64, f64)> {
        if let Some(i) = self.series.iter().position(|s| s.name == name) {
            return &mut self.series[i].points;
        }
        self.series.push(Series {
            name: name.to_string(),
            points: Vec::new(),
            dots,
        });
        &mut self.series.last_mut().expect("just pushed").points
    }
}

/// Tableau's colours: distinct, and readable by most colour-blind readers.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws `charts` side by side under `title` into the PNG at `path`.
pub fn draw(path: &Path, title: &str, charts: &[Chart]) -> Result<()> {
    register_fonts();
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let names = series_names(charts);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| fail(&e))?;
    let (strip, body) = root.split_vertically(LEGEND_HEIGHT);
    legend(&strip, &names).map_err(|e| fail(&e))?;
    for (chart, area) in charts
        .iter()
        .zip(body.split_evenly((1, charts.len().max(1))))
    {
        let (x0, x1) = span(
            chart
                .series
                .iter()
                .flat_map(|s| &s.points)
                .map(|p| p.0)
                .chain(chart.markers.iter().map(|m| m.x)),
            chart.x_log,
            false,
        );
        let (y0, y1) = span(
            chart.series.iter().flat_map(|s| &s.points).map(|p| p.1),
            chart.y_log,
            true,
        );
        let y1 = y1.max(chart.y_at_least);
        match (chart.x_log, chart.y_log) {
            (false, false) => panel(&area, chart, &names, x0..x1, y0..y1),
            (true, false) => panel(&area, chart, &names, (x0..x1).log_scale(), y0..y1),
            (false, true) => panel(&area, chart, &names, x0..x1, (y0..y1).log_scale()),
            (true, true) => panel(
                &area,
                chart,
                &names,
                (x0..x1).log_scale(),
                (y0..y1).log_scale(),
            ),
        }
        .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

const LEGEND_HEIGHT: u32 = 30;

/// Every series name of the figure, first seen first: a name has one
/// colour in every panel.
fn series_names(charts: &[Chart]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for s in charts.iter().flat_map(|c| &c.series) {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    names
}

fn colour(names: &[&str], name: &str) -> RGBColor {
    let i = names.iter().position(|n| *n == name).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// One legend for the whole figure, in a row above the panels, where it
/// can hide no point.
fn legend(area: &Area, names: &[&str]) -> Result<()> {
    const KEY: i32 = 30;
    const GAP: i32 = 32;
    let font = TextStyle::from(("sans-serif", 16)).pos(Pos::new(HPos::Left, VPos::Center));
    let widths = names
        .iter()
        .map(|n| area.estimate_text_size(n, &font).map(|(w, _)| w as i32))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    let total = widths.iter().map(|w| KEY + w).sum::<i32>() + GAP * (names.len() as i32 - 1);
    let (w, h) = area.dim_in_pixel();
    let (mut x, y) = ((w as i32 - total) / 2, h as i32 / 2);
    for (name, width) in names.iter().zip(widths) {
        let c = colour(names, name);
        area.draw(&PathElement::new([(x, y), (x + 22, y)], c.stroke_width(2)))
            .and_then(|_| area.draw(&Circle::new((x + 11, y), 4, c.filled())))
            .and_then(|_| area.draw(&Text::new(name.to_string(), (x + KEY, y), font.clone())))
            .map_err(|e| anyhow!("{e}"))?;
        x += KEY + width + GAP;
    }
    Ok(())
}

fn panel<X, Y>(area: &Area, chart: &Chart, names: &[&str], x: X, y: Y) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let xs: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.0)
        .collect();
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|e| anyhow!("{e}"))?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .x_labels(x_label_count(&xs, chart.x_log))
        .x_label_formatter(&|v| (chart.x_format)(*v))
        .y_label_formatter(&|v| number(*v))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    // Bands under everything; overlapping ones show darker.
    let (y_lo, y_hi) = (ctx.y_range().start, ctx.y_range().end);
    let font = TextStyle::from(("sans-serif", 13));
    for (i, b) in chart.bands.iter().enumerate() {
        ctx.draw_series([Rectangle::new(
            [(b.from, y_lo), (b.to, y_hi)],
            MARKER.mix(0.12).filled(),
        )])
        .map_err(|e| anyhow!("{e}"))?;
        let dy = 2 + 15 * (i as i32 % 4);
        let font = font.pos(Pos::new(HPos::Left, VPos::Top));
        ctx.draw_series([
            EmptyElement::at((b.from, y_hi)) + Text::new(b.label.clone(), (3, dy), font)
        ])
        .map_err(|e| anyhow!("{e}"))?;
    }
    // Clouds of dots first, so that the lines stay visible over them.
    let mut order: Vec<&Series> = chart.series.iter().collect();
    order.sort_by_key(|s| !s.dots);
    for s in order {
        let c = colour(names, &s.name);
        if s.dots {
            ctx.draw_series(
                s.points
                    .iter()
                    .map(|&p| Circle::new(p, 2, c.mix(0.5).filled())),
            )
            .map_err(|e| anyhow!("{e}"))?;
            continue;
        }
        ctx.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?;
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    let (x_lo, x_hi) = (ctx.x_range().start, ctx.x_range().end);
    for (i, m) in chart.markers.iter().enumerate() {
        // Labels of markers near the right edge go to their left.
        let (anchor, dx) = match (m.x - x_lo) / (x_hi - x_lo) > 0.75 {
            true => (HPos::Right, -3),
            false => (HPos::Left, 3),
        };
        let font = font.pos(Pos::new(anchor, VPos::Top));
        ctx.draw_series([DashedPathElement::new(
            [(m.x, y_lo), (m.x, y_hi)],
            6,
            4,
            MARKER.stroke_width(1),
        )])
        .map_err(|e| anyhow!("{e}"))?;
        // Labels step down so that markers close together stay readable.
        let dy = 2 + 15 * (i as i32 % 4);
        ctx.draw_series([
            EmptyElement::at((m.x, y_hi)) + Text::new(m.label.clone(), (dx, dy), font)
        ])
        .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// The colour of markers: dark grey, apart from every series' colour.
const MARKER: RGBColor = RGBColor(80, 80, 80);

/// How many x labels: one per value on a short linear axis of whole
/// numbers (worker counts), so that it shows no 1.5 workers.
fn x_label_count(xs: &[f64], log: bool) -> usize {
    let whole = xs.iter().all(|x| x.fract() == 0.0);
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    match !log && whole && hi - lo <= 16.0 {
        true => (hi - lo) as usize + 1,
        false => 10,
    }
}

/// The axis range that holds `values` with a little room; a linear `y`
/// axis starts at 0 so that bars of time compare by eye.
fn span(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (1.0, 10.0);
    }
    if log {
        return (lo / 1.4, hi * 1.4);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        hi.abs().max(1.0) * 0.5
    };
    if from_zero && lo >= 0.0 {
        (0.0, hi + 2.0 * pad)
    } else {
        (lo - pad, hi + pad)
    }
}

/// A tick label: at most three significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tick label for a count that runs into thousands (1.5k, 20k).
pub fn thousands(v: f64) -> String {
    match v.abs() >= 1000.0 {
        true => format!("{}k", number(v / 1000.0)),
        false => number(v),
    }
}

/// A tick label for a byte size, in decimal units (100 B, 10 KB, 1 GB).
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = v;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{} {}", number(v), UNITS[unit])
}

/// Registers DejaVu Sans as plotters' "sans-serif" (once per process).
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, font) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            if plotters::style::register_font("sans-serif", style, font).is_err() {
                tracing::warn!("cannot load the embedded DejaVu font; plots will have no text");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(250.0), "250");
        assert_eq!(bytes(100.0), "100 B");
        assert_eq!(bytes(1e6), "1 MB");
        assert_eq!(bytes(2.5e9), "2.5 GB");
        assert_eq!(thousands(2500.0), "2.5k");
        assert_eq!(thousands(800.0), "800");
    }

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        let mut c = Chart::new("panel", "x (units)", "y (units)");
        c.series("a").extend([(1.0, 1.0), (2.0, 3.0)]);
        c.series("b").push((1.5, 2.0));
        c.dots("c").extend([(1.2, 0.5), (1.8, 2.5)]);
        c.mark(1.6, "event");
        draw(&path, "title", &[c]).unwrap();
        assert!(std::fs::read(&path)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
