#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! `wordcount report` end to end: the labs' experiments really run (real
//! counts, real jobs through a real `redis-server`), and the report they
//! make answers every question with figures, in Markdown and in one HTML
//! page that opens offline.

mod common;

use base64::Engine;
use scraper::{ElementRef, Html, Selector};
use std::path::Path;

fn report(out: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["report", "--out", out.to_str().unwrap()];
    all.extend(args);
    common::wordcount(&all)
}

fn select<'a>(page: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    page.select(&Selector::parse(css).unwrap()).collect()
}

fn text(e: &ElementRef) -> String {
    e.text().collect()
}

/// Each `h3` question of the page with the text of the paragraph after it.
fn questions(page: &Html) -> Vec<(String, String)> {
    select(page, "h3")
        .into_iter()
        .filter(|h| !text(h).starts_with("Measured"))
        .map(|h| {
            let answer = h
                .next_siblings()
                .filter_map(ElementRef::wrap)
                .next()
                .map(|p| text(&p))
                .unwrap_or_default();
            (text(&h), answer)
        })
        .collect()
}

/// Every image is inlined (a PNG as a data URL): the page needs nothing else.
fn assert_images_inlined(page: &Html, at_least: usize) {
    let images = select(page, "img");
    assert!(images.len() >= at_least, "{} images", images.len());
    for img in images {
        let src = img.value().attr("src").unwrap();
        let data = src
            .strip_prefix("data:image/png;base64,")
            .unwrap_or_else(|| panic!("an image not inlined: {:.80}", src));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    }
}

#[test]
fn small_report_of_labs_0_and_1_answers_every_question_with_figures() {
    let out = tempfile::tempdir().unwrap();
    common::ok(&report(out.path(), &["--scale", "small", "--labs", "0,1"]));
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let page = Html::parse_document(&html);
    assert!(page.errors.is_empty(), "HTML errors: {:?}", page.errors);
    let labs: Vec<String> = select(&page, "h2").iter().map(text).collect();
    assert_eq!(labs.len(), 2, "{labs:?}");
    assert!(labs[0].starts_with("Lab 0") && labs[1].starts_with("Lab 1"));
    let asked = questions(&page);
    // Lab 0 asks three questions, lab 1 three.
    assert_eq!(asked.len(), 6, "{asked:#?}");
    for (q, a) in &asked {
        assert!(a.starts_with("Answer: "), "{q}: {a}");
        assert!(a.chars().any(|c| c.is_ascii_digit()), "{q}: {a}");
    }
    // Four experiments, a plot each; the header names the machine.
    assert_images_inlined(&page, 4);
    for what in ["cores", "memory", "kernel", "Redis", "date"] {
        assert!(
            select(&page, "td").iter().any(|td| text(td) == what),
            "no {what} in the header"
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for (q, _) in &asked {
        assert!(md.contains(q.as_str()), "report.md lacks {q}");
    }
    for name in ["efficiency", "commit", "filesize", "skew"] {
        assert!(md.contains(&format!("]({name}.png)")), "{name}.png");
        assert!(
            out.path().join(format!("{name}.csv")).is_file(),
            "{name}.csv"
        );
    }
}

/// Labs 4 and 5 with the RedisRaft module hidden: what needs it is
/// skipped with the reason, the rest answered; the questions of cuts are
/// answered as root (partitions), skipped otherwise.
#[test]
fn labs_answer_what_they_can_and_skip_the_rest_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(common::bin())
        .args(["report", "--out", out.path().to_str().unwrap()])
        .args(["--scale", "tiny", "--repeat", "1", "--labs", "5,4"])
        .env("WORDCOUNT_REDISRAFT", "/nonexistent/redisraft.so")
        .output()
        .unwrap();
    common::ok(&run);
    let page =
        Html::parse_document(&std::fs::read_to_string(out.path().join("report.html")).unwrap());
    let labs: Vec<String> = select(&page, "h2").iter().map(text).collect();
    assert!(
        labs[0].starts_with("Lab 4") && labs[1].starts_with("Lab 5"),
        "{labs:?}"
    );
    let asked = questions(&page);
    let answer = |number: &str| {
        let (q, a) = (asked.iter())
            .find(|(q, _)| q.starts_with(number))
            .unwrap_or_else(|| panic!("no question {number}: {asked:#?}"));
        (q.as_str(), a.as_str())
    };
    // Lab 4: checkpoints measured here, RedisRaft's two skipped.
    for n in ["4.1 ", "4.2 "] {
        let (q, a) = answer(n);
        assert!(a.starts_with("Answer: "), "{q}: {a}");
    }
    for n in ["4.3 ", "4.4 "] {
        let (q, a) = answer(n);
        assert!(
            a.starts_with("Skipped: ") && a.contains("RedisRaft"),
            "{q}: {a}"
        );
    }
    // Lab 5: the CRDT's cost and its restarts measured; cut-and-heal and
    // read repair need root.
    let (q, a) = answer("5.1 ");
    assert!(
        a.starts_with("Answer: ") && a.contains("CRDT, 3 sites"),
        "{q}: {a}"
    );
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let (q, a) = answer("5.2 ");
    if root {
        assert!(
            a.starts_with("Answer: ") && a.contains("files behind at"),
            "{q}: {a}"
        );
    } else {
        assert!(a.starts_with("Skipped: ") && a.contains("root"), "{q}: {a}");
    }
    let (q, a) = answer("5.3 ");
    if root {
        assert!(a.starts_with("Answer: ") && a.contains(" ms ("), "{q}: {a}");
    } else {
        assert!(a.starts_with("Skipped: ") && a.contains("root"), "{q}: {a}");
    }
    let (q, a) = answer("5.4 ");
    assert!(
        a.starts_with("Answer: ") && a.contains("came back from the peers"),
        "{q}: {a}"
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("**Skipped**: the RedisRaft module"), "{md}");
    // checkpoint-cost, redis-kill, crdt-cost, checkpoint-recovery, and
    // partitions and read-repair as root.
    assert_images_inlined(&page, 4 + 2 * usize::from(root));
}

#[test]
fn an_unknown_lab_is_refused_before_anything_runs() {
    let out = tempfile::tempdir().unwrap();
    let run = report(out.path(), &["--labs", "0,9"]);
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--labs") && err.contains('9'), "{err}");
    assert!(!out.path().join("report.md").exists());
}
