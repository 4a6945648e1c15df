//! The layering of ARCHITECTURE.md's code map, checked against the code.
//!
//! The table's "may use" column is the data: for every `src/**/*.rs` file
//! of the library, each `crate::…` path it names (in `use` lines and in
//! code, comments aside) must lead to its own module, to a module its row
//! lists, or to a name the crate root re-exports (the public API). A row
//! may also allow single items (`watch::Change`), "nothing", or
//! "everything above" (every module of the rows above it). Unit-test
//! modules (`#[cfg(test)] mod tests`, `tests.rs`) and the binary
//! (`src/bin/`, which reaches the library only as `innkeeper::`) are not
//! checked. When a module moves or a dependency is meant, edit the table,
//! not this test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// What one row of the code map allows.
#[derive(Debug, Default)]
struct Allowed {
    /// Whole modules.
    modules: BTreeSet<String>,
    /// Single items of a module: (module, item).
    items: BTreeSet<(String, String)>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Backticked spans of a table cell, in order.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.trim().to_string())
        .collect()
}

/// The code map: module name → what it may use, in table order.
fn code_map(text: &str) -> Vec<(String, Allowed)> {
    let start = text
        .find("## Code map")
        .expect("ARCHITECTURE.md has a '## Code map' section");
    let mut rows: Vec<(String, Allowed)> = Vec::new();
    let mut in_table = false;
    for line in text[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[0] == "module" || cells[0].starts_with("---") {
            continue;
        }
        let Some(name) = ticked(cells[0]).into_iter().next() else {
            continue;
        };
        let may_use = cells[cells.len() - 1];
        let mut allowed = Allowed::default();
        if may_use.contains("everything above") {
            for (above, _) in &rows {
                allowed.modules.insert(above.clone());
            }
        }
        for token in ticked(may_use) {
            match token.split_once("::") {
                Some((module, item)) => {
                    allowed.items.insert((module.to_string(), item.to_string()));
                }
                None => {
                    allowed.modules.insert(token);
                }
            }
        }
        rows.push((name, allowed));
    }
    assert!(
        !rows.is_empty(),
        "no rows found in ARCHITECTURE.md's code map"
    );
    rows
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without a trailing
/// `#[cfg(test)] mod tests` block (kept at the end of files here).
fn code_of(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(at) = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim().starts_with("mod tests"))
    {
        lines.truncate(at);
    }
    lines
        .iter()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segments named after `crate::`: (module or root name, item).
/// Grouped imports (`crate::{a, b::{C, D}}`) give one entry per member.
fn crate_refs(code: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            for member in split_top(&group[..end]) {
                out.extend(first_two(member));
            }
            rest = &group[end..];
        } else {
            out.extend(first_two(rest));
        }
    }
    out
}

/// Splits a group's members at commas outside braces.
fn split_top(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[from..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// `a::B…` → [(`a`, Some(`B`))]; `a::{B, C}` → one entry per member;
/// `a` → [(`a`, None)].
fn first_two(path: &str) -> Vec<(String, Option<String>)> {
    let path = path.trim_start();
    let first = ident(path).to_string();
    let rest = path[first.len()..].trim_start();
    let Some(after) = rest.strip_prefix("::").map(str::trim_start) else {
        return vec![(first, None)];
    };
    if let Some(group) = after.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return split_top(&group[..end])
            .into_iter()
            .map(|m| (first.clone(), Some(ident(m).to_string())))
            .collect();
    }
    let second = ident(after);
    vec![(first, (!second.is_empty()).then(|| second.to_string()))]
}

/// A library source file: its path (for messages), its top module, its text.
struct Source {
    rel: String,
    module: String,
    text: String,
}

/// Every way the sources break the code map of `architecture`.
fn layering_problems(architecture: &str, sources: &[Source]) -> Vec<String> {
    let rows = code_map(architecture);
    let table: BTreeMap<&str, &Allowed> = rows.iter().map(|(n, a)| (n.as_str(), a)).collect();
    // The crate's modules: what `crate::NAME` can mean besides a root re-export.
    let modules: BTreeSet<&str> = sources.iter().map(|s| s.module.as_str()).collect();
    let mut problems = Vec::new();
    for module in &modules {
        if !table.contains_key(module) {
            problems.push(format!(
                "module `{module}` has no row in ARCHITECTURE.md's code map: add a row \
                 saying what it owns and which modules it may use"
            ));
        }
    }
    for source in sources {
        let module = source.module.as_str();
        let Some(allowed) = table.get(module) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        for (target, item) in crate_refs(&code_of(&source.text)) {
            if target == module || !modules.contains(target.as_str()) {
                // Its own module, or a root re-export (the public API).
                continue;
            }
            let ok = allowed.modules.contains(&target)
                || item
                    .as_ref()
                    .is_some_and(|i| allowed.items.contains(&(target.clone(), i.clone())));
            let named = match &item {
                Some(i) => format!("crate::{target}::{i}"),
                None => format!("crate::{target}"),
            };
            if !ok && seen.insert(named.clone()) {
                problems.push(format!(
                    "{rel} uses `{named}`, but the code map row of `{module}` in \
                     ARCHITECTURE.md does not allow module `{target}`: if the dependency \
                     is meant, add `{target}` (or `{target}::{item}`) to that row's \
                     \"may use\" column; if not, remove the use",
                    rel = source.rel,
                    item = item.as_deref().unwrap_or("Item"),
                ));
            }
        }
    }
    problems
}

#[test]
fn every_crate_import_is_allowed_by_the_code_map() {
    let root = root();
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut sources = Vec::new();
    for file in &files {
        let in_src = file.strip_prefix(&src).unwrap();
        if in_src.starts_with("bin") || in_src == Path::new("lib.rs") {
            continue;
        }
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let module = in_src.components().next().unwrap().as_os_str();
        sources.push(Source {
            rel: file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            module: module.to_string_lossy().trim_end_matches(".rs").to_string(),
            text: fs::read_to_string(file).unwrap(),
        });
    }
    let problems = layering_problems(&architecture, &sources);
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_use_the_table_does_not_allow_is_named_with_its_file() {
    let architecture = "## Code map\n\n| module | owns | may use |\n|---|---|---|\n\
        | `path` | rules | nothing |\n| `tree` | nodes | `path`, `watch::Change` |\n\
        | `watch` | tables | `path` |\n";
    let source = |rel: &str, module: &str, text: &str| Source {
        rel: rel.to_string(),
        module: module.to_string(),
        text: text.to_string(),
    };
    let clean = [
        source("src/path.rs", "path", "use crate::Error;"),
        source(
            "src/tree.rs",
            "tree",
            "use crate::path::{self, parent};\nuse crate::watch::Change;\n// crate::watch::Table\n",
        ),
        source("src/watch.rs", "watch", "use crate::{path, Stat};"),
    ];
    assert_eq!(
        layering_problems(architecture, &clean),
        Vec::<String>::new()
    );

    let broken = [
        source("src/path.rs", "path", "fn f() { crate::tree::walk(); }"),
        source(
            "src/tree.rs",
            "tree",
            "use crate::{watch::{Change, Table}};",
        ),
        source(
            "src/watch.rs",
            "watch",
            "#[cfg(test)]\nmod tests { use crate::tree; }",
        ),
        source("src/extra.rs", "extra", ""),
    ];
    let problems = layering_problems(architecture, &broken);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("module `extra` has no row"));
    assert!(problems[1].starts_with("src/path.rs uses `crate::tree::walk`"));
    assert!(problems[1].contains("row of `path`") && problems[1].contains("add `tree`"));
    assert!(problems[2].starts_with("src/tree.rs uses `crate::watch::Table`"));
}

#[test]
fn the_checker_reads_grouped_and_nested_imports() {
    let code = "use crate::{node::{Acl, Stat}, path, Error};\nlet x = crate::engine::Engine::new();\nmycrate::nope::X;";
    assert_eq!(
        crate_refs(code),
        vec![
            ("node".to_string(), Some("Acl".to_string())),
            ("node".to_string(), Some("Stat".to_string())),
            ("path".to_string(), None),
            ("Error".to_string(), None),
            ("engine".to_string(), Some("Engine".to_string())),
        ]
    );
    let map = code_map(
        "## Code map\n\n| module | owns | may use |\n|---|---|---|\n| `a` | x | nothing |\n\
         | `b` | y | `a`, `c::D` |\n| `e` | z | everything above |\n\nprose\n",
    );
    let names: Vec<&str> = map.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "e"]);
    assert!(map[0].1.modules.is_empty());
    assert!(map[1].1.modules.contains("a"));
    assert!(map[1].1.items.contains(&("c".to_string(), "D".to_string())));
    assert!(map[2].1.modules.contains("a") && map[2].1.modules.contains("b"));
}
