//! `wordcount report`: runs the experiments of the labs asked for, then
//! writes `OUT/report.md` and `OUT/report.html` (one file that opens
//! offline: the plots are inlined), each question of each lab answered with
//! the figures just measured. An experiment that fails does not lose the
//! others: the report says which failed and why, and the command fails.

use super::questions::{Lab, Outcomes, LABS};
use crate::experiments::machine::{self, CpuClock};
use crate::experiments::{Experiment, Runner, Settings};
use anyhow::{bail, Context, Result};
use base64::Engine;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The labs to run, e.g. 0,1 [default: all of them].
    #[arg(long, value_delimiter = ',', value_name = "N,...",
          value_parser = clap::value_parser!(u8).range(..LABS.len() as i64))]
    pub labs: Vec<u8>,
    #[command(flatten)]
    pub settings: Settings,
}

/// What the report is about, for its header.
struct Header {
    date: String,
    took_s: f64,
    steal: f64,
    labs: Vec<u8>,
}

pub fn report(args: ReportArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let started = Instant::now();
    let clock = CpuClock::now()?;
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut numbers = args.labs.clone();
    if numbers.is_empty() {
        numbers = LABS.iter().map(|l| l.number).collect();
    }
    numbers.sort_unstable();
    numbers.dedup();
    let labs: Vec<&Lab> = LABS
        .iter()
        .filter(|l| numbers.contains(&l.number))
        .collect();
    let runner = Runner::new(args.settings, stop.clone())?;
    let mut outcomes = Outcomes::new();
    let mut failed = BTreeMap::new();
    for exp in labs.iter().flat_map(|l| l.experiments) {
        if outcomes.contains_key(exp.name()) || failed.contains_key(exp.name()) {
            continue;
        }
        if exp.unavailable().is_some() {
            continue;
        }
        match runner.run(*exp) {
            Ok(o) => {
                outcomes.insert(exp.name(), o);
            }
            Err(e) if stop.load(Ordering::Relaxed) => return Err(e),
            Err(e) => {
                eprintln!("[report] {:#}; the report goes on without it", e);
                failed.insert(exp.name(), format!("{e:#}"));
            }
        }
    }
    let header = Header {
        date,
        took_s: started.elapsed().as_secs_f64(),
        steal: clock.steal_since()?,
        labs: numbers,
    };
    let out = &runner.settings().out;
    let md = markdown(&header, runner.settings(), &labs, &outcomes, &failed);
    let md_path = out.join("report.md");
    let html_path = out.join("report.html");
    std::fs::write(&md_path, &md).with_context(|| format!("cannot write {}", md_path.display()))?;
    std::fs::write(&html_path, html(&md, out)?)
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    eprintln!(
        "[report] done in {}: wrote {} and {}",
        minutes(header.took_s),
        md_path.display(),
        html_path.display()
    );
    if !failed.is_empty() {
        let names: Vec<&str> = failed.keys().copied().collect();
        bail!(
            "{} experiment(s) failed: {}; the report says why",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

fn minutes(s: f64) -> String {
    match s.round() as u64 {
        s if s < 60 => format!("{s} s"),
        s => format!("{} min {} s", s / 60, s % 60),
    }
}

/// The report in Markdown: a header, then a section per lab.
fn markdown(
    h: &Header,
    settings: &Settings,
    labs: &[&Lab],
    outcomes: &Outcomes,
    failed: &BTreeMap<&str, String>,
) -> String {
    let mut md = String::from("# wordcount lab report\n\n| | |\n| --- | --- |\n");
    let labs_run: Vec<String> = h.labs.iter().map(u8::to_string).collect();
    let mut facts = vec![("date", h.date.clone())];
    facts.extend(machine::describe());
    facts.extend([
        ("wordcount", env!("CARGO_PKG_VERSION").to_string()),
        (
            "scale",
            format!(
                "{}, each point the median of {} run(s)",
                format!("{:?}", settings.scale).to_lowercase(),
                settings.repeat
            ),
        ),
        ("labs", labs_run.join(", ")),
        (
            "took",
            format!(
                "{}; the hypervisor took {:.1} % of the CPU time (steal)",
                minutes(h.took_s),
                100.0 * h.steal
            ),
        ),
    ]);
    for (what, value) in facts {
        let _ = writeln!(md, "| {what} | {value} |");
    }
    for lab in labs {
        lab_section(&mut md, lab, outcomes, failed);
    }
    md
}

fn lab_section(md: &mut String, lab: &Lab, outcomes: &Outcomes, failed: &BTreeMap<&str, String>) {
    let _ = write!(
        md,
        "\n## Lab {}: {}\n\n{}\n",
        lab.number, lab.title, lab.about
    );
    if let Some(why) = whole_lab_missing(lab) {
        let _ = write!(md, "\n**Skipped**: {why}. Its questions:\n\n");
        for (i, q) in lab.questions.iter().enumerate() {
            let _ = writeln!(md, "- {}.{} {}", lab.number, i + 1, q.ask);
        }
        return;
    }
    for (i, q) in lab.questions.iter().enumerate() {
        let _ = write!(md, "\n### {}.{} {}\n\n", lab.number, i + 1, q.ask);
        let answer = match q.needs.missing() {
            Some(why) => format!("**Skipped**: {why}."),
            None => match (q.answer)(outcomes) {
                Ok(a) => format!("**Answer**: {a}"),
                Err(e) => format!("**Not answered**: {e:#}."),
            },
        };
        let _ = writeln!(md, "{answer}");
    }
    for exp in lab.experiments {
        experiment_section(md, *exp, outcomes, failed);
    }
}

/// Why none of the lab's questions can be answered here, if so.
fn whole_lab_missing(lab: &Lab) -> Option<&'static str> {
    let mut why = lab.questions.iter().map(|q| q.needs.missing());
    let first = why.next().flatten()?;
    why.all(|w| w.is_some()).then_some(first)
}

fn experiment_section(
    md: &mut String,
    exp: Experiment,
    outcomes: &Outcomes,
    failed: &BTreeMap<&str, String>,
) {
    let name = exp.name();
    let _ = write!(md, "\n### Measured: `{name}`\n\n");
    let Some(o) = outcomes.get(name) else {
        match (failed.get(name), exp.unavailable()) {
            (Some(why), _) => writeln!(md, "**Failed**: {why}"),
            (None, Some(why)) => writeln!(md, "**Skipped**: {why}."),
            (None, None) => writeln!(md, "**Failed**: not run"),
        }
        .expect("writing to a String");
        return;
    };
    let _ = write!(
        md,
        "{}.\n\n![{name}]({name}.png)\n\n{}\n",
        o.title,
        o.table.markdown()
    );
    for note in &o.notes {
        let _ = writeln!(md, "- {note}");
    }
    let _ = writeln!(md, "\nEvery column: [{name}.csv]({name}.csv).");
}

/// The report as one HTML page: the Markdown rendered, each image inlined
/// as a data URL so that the page opens alone and offline.
fn html(md: &str, dir: &Path) -> Result<String> {
    let mut events = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        events.push(match event {
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let path = dir.join(dest_url.as_ref());
                let png = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                Event::Start(Tag::Image {
                    link_type,
                    dest_url: CowStr::from(format!("data:image/png;base64,{data}")),
                    title,
                    id,
                })
            }
            other => other,
        });
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, events.into_iter());
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>wordcount lab report</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    ))
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;color:#222;margin:0}\
main{max-width:60rem;margin:0 auto;padding:1rem 2rem}\
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}\
table{border-collapse:collapse;font-size:13px;margin:.5rem 0}\
td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}\
img{max-width:100%}code{background:#f4f4f4;padding:0 3px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_images_and_renders_tables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"\x89PNG").unwrap();
        let page = html(
            "![a](a.png)\n\n| x | y |\n| --- | --- |\n| 1 | 2 |\n",
            dir.path(),
        )
        .unwrap();
        assert!(
            page.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{page}"
        );
        assert!(page.contains("<td>1</td>"), "{page}");
    }

    #[test]
    fn a_missing_image_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = html("![a](gone.png)", dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("gone.png"), "{err:#}");
    }

    #[test]
    fn durations_read_as_minutes() {
        assert_eq!(minutes(42.4), "42 s");
        assert_eq!(minutes(754.0), "12 min 34 s");
        assert_eq!(minutes(179.97), "3 min 0 s");
    }
}
