//! Every section the code cites in `docs/zookeeper-semantics.md` has a
//! heading there, so a citation never points at nothing.
//!
//! A citation is the doc's file name, or the file name of the external
//! notes it replaced (same labels), or the word "reference" right before a
//! label; then one or more labels: `A.4`, `A.5 and B.3`, `H.4–H.7, D.7`,
//! a bare letter for a whole part. A label is defined by a heading line
//! that starts with it (`### A.4 Create: order of checks`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the doc lives, relative to the crate root.
const DOC: &str = "docs/zookeeper-semantics.md";

/// The trees whose text may cite the doc, relative to the crate root.
const SCANNED: &[&str] = &[
    "src",
    "tests",
    "benches",
    "examples",
    "fuzz",
    ".ci",
    "ARCHITECTURE.md",
    "README.md",
];

/// The file names a citation may use. The second is the external notes the
/// doc replaced; it is spelled in two pieces so that a global rename of that
/// name does not rewrite this list.
fn cited_names() -> [String; 2] {
    [
        format!("zookeeper-{}.md", "semantics"),
        format!("zookeeper-{}.md", "reference"),
    ]
}

#[test]
fn every_cited_section_has_a_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join(DOC)).expect("the doc is part of the repository");
    let defined = headings(&doc);
    assert!(
        ["A", "A.1", "C.1.3", "H.11", "J", "J.28"]
            .iter()
            .all(|l| defined.contains(*l)),
        "{DOC} lost its headings: {defined:?}"
    );

    let mut files = Vec::new();
    for entry in SCANNED {
        collect(&root.join(entry), &mut files);
    }
    // This file's own examples are not citations.
    files.retain(|f| !f.ends_with(file!()));
    assert!(files.len() > 20, "found only {} files to scan", files.len());

    let mut missing = Vec::new();
    let mut cited = 0;
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for label in citations(line) {
                cited += 1;
                if !defined.contains(&label) {
                    let shown = file.strip_prefix(root).unwrap_or(file).display();
                    missing.push(format!("{shown}:{}: {label}", n + 1));
                }
            }
        }
    }
    assert!(
        cited > 0,
        "no citation found at all: is the scanner broken?"
    );
    assert!(
        missing.is_empty(),
        "cited but without a heading in {DOC}:\n{}",
        missing.join("\n")
    );
}

#[test]
fn citation_lists_are_read_whole() {
    let labels = |line: &str| citations(line).into_iter().collect::<Vec<_>>();
    let name = &cited_names()[0];
    assert_eq!(
        labels(&format!("//! (`docs/{name}` H.4–H.6, D.7, E.3 and C.)")),
        ["C", "D.7", "E.3", "H.4", "H.5", "H.6"]
    );
    assert_eq!(
        labels(&format!("// Reference: docs/{name} D.3, the 3.8 quirk.")),
        ["D.3"]
    );
    assert_eq!(
        labels("/// reports 5 nodes (reference A.2); Reference: C.1.6, C.5."),
        ["A.2", "C.1.6", "C.5"]
    );
    assert_eq!(
        labels("// The reference (F.2) has exists check READ"),
        ["F.2"]
    );
    assert!(labels("runs against a reference model (a map)").is_empty());
    assert!(labels(&format!("the section of `{name}` it checks")).is_empty());
    assert!(labels("fn check_agrees_with_the_reference(path: A.1)").is_empty());
}

#[test]
fn headings_define_labels() {
    let doc =
        "# Title\n## A. Data model\n### A.1 Paths\n#### C.1.3 Ahead\nA.2 in text\n### J.10 x\n";
    let defined: Vec<_> = headings(doc).into_iter().collect();
    assert_eq!(defined, ["A", "A.1", "C.1.3", "J.10"]);
}

/// The labels defined by heading lines of `doc`.
fn headings(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|line| {
            let rest = line.trim_start_matches('#');
            if rest.len() == line.len() || !rest.starts_with(' ') {
                return None;
            }
            let chars: Vec<char> = rest.trim_start().chars().collect();
            let (label, end) = label_at(&chars, 0)?;
            // `## A. Data model`: a part's letter is followed by a dot.
            let after = chars.get(end).copied();
            matches!(after, None | Some(' ') | Some('.')).then_some(label)
        })
        .collect()
}

/// Every label cited on `line`.
fn citations(line: &str) -> BTreeSet<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut found = BTreeSet::new();
    for name in cited_names() {
        for end in ends_of(&chars, &name) {
            read_list(&chars, end, true, &mut found);
        }
    }
    for end in ends_of(&chars, "reference") {
        let start = end - "reference".len();
        let before = start.checked_sub(1).map(|i| chars[i]);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            continue;
        }
        read_list(&chars, end, false, &mut found);
    }
    found
}

/// Where each occurrence of the ASCII `word` in `chars` ends, ignoring case.
fn ends_of(chars: &[char], word: &str) -> Vec<usize> {
    let word: Vec<char> = word.chars().collect();
    (0..chars.len())
        .filter(|&i| {
            chars[i..].len() >= word.len()
                && chars[i..i + word.len()]
                    .iter()
                    .zip(&word)
                    .all(|(c, w)| c.to_ascii_lowercase() == *w)
        })
        .map(|i| i + word.len())
        .collect()
}

/// Reads the list of labels that follows a citation marker ending at
/// `start`. Bare part letters count only after a file name.
fn read_list(chars: &[char], start: usize, letters: bool, found: &mut BTreeSet<String>) {
    let mut i = start;
    while i < chars.len() && matches!(chars[i], '`' | ':' | '(' | '§' | ' ') {
        i += 1;
    }
    let Some((mut label, mut end)) = label_at(chars, i) else {
        return;
    };
    if !letters && !label.contains('.') {
        return;
    }
    loop {
        found.insert(label.clone());
        // A separator: `, `, ` and `, or a range dash.
        let mut j = end;
        let mut range = false;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && matches!(chars[j], ',' | '–' | '-') {
            range = chars[j] != ',';
            j += 1;
        } else if chars[j..].starts_with(&['a', 'n', 'd', ' ']) {
            j += 3;
        } else {
            return;
        }
        while j < chars.len() && matches!(chars[j], ' ' | '§') {
            j += 1;
        }
        let Some((next, next_end)) = label_at(chars, j) else {
            return;
        };
        if !letters && !next.contains('.') {
            return;
        }
        if range {
            for between in range_labels(&label, &next) {
                found.insert(between);
            }
        }
        label = next;
        end = next_end;
    }
}

/// The labels strictly between `from` and `to` when both are `X.n` with one
/// letter (`H.4`–`H.7` covers H.5 and H.6).
fn range_labels(from: &str, to: &str) -> Vec<String> {
    let split = |l: &str| {
        let (part, n) = l.split_once('.')?;
        Some((part.to_string(), n.parse::<u32>().ok()?))
    };
    match (split(from), split(to)) {
        (Some((a, x)), Some((b, y))) if a == b && x < y => {
            ((x + 1)..y).map(|n| format!("{a}.{n}")).collect()
        }
        _ => Vec::new(),
    }
}

/// A label at `i`: one capital letter A–J, then any number of `.digits`,
/// not followed by a letter, digit or underscore. Returns it and its end.
fn label_at(chars: &[char], i: usize) -> Option<(String, usize)> {
    let first = *chars.get(i)?;
    if !('A'..='J').contains(&first) {
        return None;
    }
    let mut end = i + 1;
    while chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(|c| c.is_ascii_digit()) {
        end += 1;
        while chars.get(end).is_some_and(|c| c.is_ascii_digit()) {
            end += 1;
        }
    }
    if chars
        .get(end)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        return None;
    }
    Some((chars[i..end].iter().collect(), end))
}

/// Text files under `path` (or `path` itself), skipping build output.
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        let text_like = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["rs", "md", "sh", "py", "java", "toml", "txt"].contains(&e));
        if text_like {
            out.push(path.to_path_buf());
        }
        return;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        if p.is_dir() && (name == "target" || name == "corpus" || name == "artifacts") {
            continue;
        }
        collect(&p, out);
    }
}
