//! The docs keep up with the code: the README stays short, the protocol
//! page names every Redis key, hash field and function this crate defines,
//! and every relative link of the README and the book (docs/) resolves.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use wordcount_protocol::keys::Keys;
use wordcount_protocol::library;

/// The repository's root: this crate is `protocol/`.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol/ has a parent")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn protocol_page() -> String {
    read(&repo().join("docs/src/protocol.md"))
}

#[test]
fn the_readme_is_at_most_200_lines() {
    let readme = read(&repo().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; at most 200 (move the rest into the book, docs/src)"
    );
}

/// Every key of a job, with the prefix `P` as the protocol page writes it.
/// The destructuring names every field of `Keys`: a key added to the
/// struct fails to compile here until it is listed, and so documented.
fn every_key() -> Vec<String> {
    let keys = Keys::new("P");
    let Keys {
        prefix: _,
        queue,
        enqueued,
        meta,
        failed,
        counts,
        top,
        stats,
        latency,
        faults,
        summary,
        stream,
        ready,
        entries,
        leases,
        holders,
        tickets,
        done,
        log,
        crdt_files,
        crdt_digest,
        crdt_stats,
    } = keys.clone();
    vec![
        queue,
        enqueued,
        meta,
        failed,
        counts,
        top,
        stats,
        latency,
        faults,
        summary,
        stream,
        ready,
        entries,
        leases,
        holders,
        tickets,
        done,
        log,
        crdt_files,
        crdt_digest,
        crdt_stats,
        // The keys made per commit, with the names the page gives their parts.
        keys.stage("ID", "CONSUMER"),
        keys.result("ID"),
    ]
}

#[test]
fn the_protocol_page_names_every_key() {
    let page = protocol_page();
    let missing: Vec<String> = every_key()
        .into_iter()
        .filter(|key| !page.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/protocol.md does not name these keys of wordcount_protocol::keys: {missing:?}"
    );
}

/// The string values of `pub const NAME: &str = "value";` in the source of
/// keys.rs: the fields of the job's hashes and entries (`meta::FILES`,
/// `stats::WORDS`, ...), which are consts in modules and cannot be listed
/// from Rust. `DEFAULT_PREFIX` is the prefix, not a field.
fn hash_fields() -> BTreeSet<String> {
    let source = read(&repo().join("protocol/src/keys.rs"));
    let mut fields = BTreeSet::new();
    for line in source.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("pub const ") else {
            continue;
        };
        let Some((name, value)) = rest.split_once(": &str = \"") else {
            continue;
        };
        if name == "DEFAULT_PREFIX" {
            continue;
        }
        let value = value
            .strip_suffix("\";")
            .unwrap_or_else(|| panic!("keys.rs: cannot read the value of {name}: {line}"));
        fields.insert(value.to_string());
    }
    fields
}

#[test]
fn the_protocol_page_names_every_hash_field() {
    let fields = hash_fields();
    // The parser found the modules' consts (a few of them, to be sure).
    for known in ["files", "files_done", "due_ms", "taken_ms", "throttled_ms"] {
        assert!(
            fields.contains(known),
            "keys.rs has no field {known}: {fields:?}"
        );
    }
    let page = protocol_page();
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !page.contains(&format!("`{f}`")) && !page.contains(&format!(" {f} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/protocol.md does not name these fields of wordcount_protocol::keys: {missing:?}"
    );
}

#[test]
fn the_protocol_page_names_every_function_and_error() {
    let page = protocol_page();
    let mut names: Vec<String> = Vec::new();
    // Every function the Lua library registers.
    for part in library::SOURCE.split("redis.register_function('").skip(1) {
        let name = part.split('\'').next().expect("a function name");
        names.push(name.to_string());
    }
    assert!(names.len() >= 8, "functions found: {names:?}");
    names.extend([library::error::STAGE_GONE, library::error::BAD_ID].map(String::from));
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !page.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/protocol.md does not name: {missing:?}"
    );
}

/// README.md and every Markdown file under docs/.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![repo().join("README.md")];
    walk(&repo().join("docs"), &mut files);
    files
}

/// The targets of the inline links `[text](target)` of a Markdown text,
/// outside code (fenced blocks and `code spans`). Images `![alt](src)`
/// are links too.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans: what is between backticks is not a link.
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
                prose.push(' ');
            }
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            // `[x](target "title")`: the target is the first word.
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        for target in link_targets(&text) {
            let lower = target.to_ascii_lowercase();
            if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
            {
                continue;
            }
            // An anchor in the same page, or a file's anchor: the file must exist.
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() {
                continue;
            }
            checked += 1;
            let dir = file.parent().expect("a file has a directory");
            if !dir.join(path).exists() {
                broken.push(format!(
                    "{}: {target}",
                    file.strip_prefix(repo()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} relative links found: is the parser right?"
    );
    assert!(broken.is_empty(), "links to no file: {broken:#?}");
}

#[test]
fn links_are_read_outside_code_only() {
    let text = "see [a](a.md#x) and `[b](b.md)`\n```sh\n[c](c.md)\n```\n![img](i.png \"t\")";
    assert_eq!(link_targets(text), ["a.md#x", "i.png"]);
}
