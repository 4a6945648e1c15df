//! ZooKeeper's path rules (`docs/zookeeper-semantics.md` A.1) and path arithmetic.
//!
//! Paths stay `&str`/`String` inside the crate; this module checks them once
//! at the API edge and splits them without allocating.

use crate::error::{Error, ErrorKind, Result};

/// Why a path was rejected, with the byte offset of the offending place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// The path does not start with `/`.
    NoLeadingSlash,
    /// The path ends with `/` (and is not `/`).
    TrailingSlash,
    /// A NUL character.
    NulCharacter,
    /// Two slashes in a row.
    EmptySegment,
    /// A `.` or `..` segment.
    RelativeSegment,
    /// A control, surrogate-range, private-use or U+FFF0–U+FFFF character.
    InvalidCharacter,
}

impl PathProblem {
    fn describe(self) -> &'static str {
        match self {
            PathProblem::Empty => "path length must be > 0",
            PathProblem::NoLeadingSlash => "path must start with / character",
            PathProblem::TrailingSlash => "path must not end with / character",
            PathProblem::NulCharacter => "null character not allowed",
            PathProblem::EmptySegment => "empty node name specified",
            PathProblem::RelativeSegment => "relative paths not allowed",
            PathProblem::InvalidCharacter => "invalid character",
        }
    }
}

/// Checks `path` against ZooKeeper's rules; the error carries the problem and
/// its byte offset.
pub fn check(path: &str) -> std::result::Result<(), (PathProblem, usize)> {
    let bytes = path.as_bytes();
    if bytes.is_empty() {
        return Err((PathProblem::Empty, 0));
    }
    if bytes[0] != b'/' {
        return Err((PathProblem::NoLeadingSlash, 0));
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    if bytes[bytes.len() - 1] == b'/' {
        return Err((PathProblem::TrailingSlash, bytes.len() - 1));
    }
    let mut segment_start = 1;
    let mut last = '/';
    for (offset, c) in path.char_indices().skip(1) {
        if c == '\0' {
            return Err((PathProblem::NulCharacter, offset));
        }
        if c == '/' {
            if last == '/' {
                return Err((PathProblem::EmptySegment, offset));
            }
            let segment = &path[segment_start..offset];
            if segment == "." || segment == ".." {
                return Err((PathProblem::RelativeSegment, offset));
            }
            segment_start = offset + 1;
        } else if invalid_char(c) {
            return Err((PathProblem::InvalidCharacter, offset));
        }
        last = c;
    }
    let segment = &path[segment_start..];
    if segment == "." || segment == ".." {
        return Err((PathProblem::RelativeSegment, path.len()));
    }
    Ok(())
}

/// Characters ZooKeeper rejects. Java checks UTF-16 units, so every
/// character outside the BMP (a surrogate pair there) is rejected too.
fn invalid_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// Validates `path`, turning a problem into an `InvalidPath` error.
pub fn validate(path: &str) -> Result<()> {
    check(path).map_err(|(problem, offset)| {
        Error::with_path(ErrorKind::InvalidPath, path)
            .detail(format!("{} at byte {offset}", problem.describe()))
    })
}

/// Validates the prefix of a sequential create, which may end with `/`
/// (ZooKeeper checks `prefix + "1"`).
pub fn validate_sequential_prefix(prefix: &str) -> Result<()> {
    if prefix.ends_with('/') {
        validate(&format!("{prefix}1")).map_err(|e| e.or_path(prefix))
    } else {
        validate(prefix)
    }
}

/// The parent of a path (`/a/b` → `/a`, `/a` → `/`); `/` is its own parent.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(idx) => &path[..idx],
    }
}

/// The last segment of a path (`/a/b` → `b`, `/` → ``).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(idx) => &path[idx + 1..],
        None => path,
    }
}

/// Joins a parent and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The name a sequential create produces: the prefix and the counter as
/// Java's `%010d` (after `i32` overflow the sign counts toward the width,
/// as in Java: −5 prints `-000000005`).
pub fn sequential_name(prefix: &str, counter: i32) -> String {
    format!("{prefix}{counter:010}")
}

/// True when `path` is `ancestor` or lies below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path == ancestor
        || (path.len() > ancestor.len()
            && path.starts_with(ancestor)
            && path.as_bytes()[ancestor.len()] == b'/')
}

/// Every proper ancestor of `path`, nearest first, ending with `/`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        if current == "/" {
            return None;
        }
        current = parent(current);
        Some(current)
    })
}

/// A deliberately plain second implementation of the rules, working on
/// UTF-16 units as ZooKeeper's Java code does. Tests and the `path` fuzz
/// target check that [`check`] agrees with it on every input.
#[doc(hidden)]
pub fn reference_valid(path: &str) -> bool {
    let units: Vec<u16> = path.encode_utf16().collect();
    if units.is_empty() || units[0] != u16::from(b'/') {
        return false;
    }
    if units.len() == 1 {
        return true;
    }
    if units[units.len() - 1] == u16::from(b'/') {
        return false;
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let mut last = slash;
    for i in 1..units.len() {
        let c = units[i];
        if c == 0 || (c == slash && last == slash) {
            return false;
        } else if c == dot && last == dot {
            let before = units[i - 2];
            let after_ends = i + 1 == units.len() || units[i + 1] == slash;
            if before == slash && after_ends {
                return false;
            }
        } else if c == dot {
            let after_ends = i + 1 == units.len() || units[i + 1] == slash;
            if units[i - 1] == slash && after_ends {
                return false;
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c)
        {
            return false;
        }
        last = c;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn check_agrees_with_the_reference(path in "[/a.\\x00\\x01\\u{7f}\\u{e000}\\u{fff5}\\u{1f600}é ]{0,12}") {
            prop_assert_eq!(check(&path).is_ok(), reference_valid(&path), "{:?}", path);
        }
    }

    // Reference: docs/zookeeper-semantics.md A.1.
    #[test]
    fn accepts_zookeeper_valid_paths() {
        for p in [
            "/", "/a", "/a/b", "/a.", "/.a", "/a..b", "/...", "/a b", "/a:*?\\", "/é", "/日本",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_zookeeper_invalid_paths() {
        use PathProblem::*;
        let cases: &[(&str, PathProblem, usize)] = &[
            ("", Empty, 0),
            ("a", NoLeadingSlash, 0),
            ("/a/", TrailingSlash, 2),
            ("//a", EmptySegment, 1),
            ("/a//b", EmptySegment, 3),
            ("/a\0b", NulCharacter, 2),
            ("/.", RelativeSegment, 2),
            ("/a/./b", RelativeSegment, 4),
            ("/a/..", RelativeSegment, 5),
            ("/a\u{1}", InvalidCharacter, 2),
            ("/a\u{7f}", InvalidCharacter, 2),
            ("/a\u{9f}", InvalidCharacter, 2),
            ("/\u{e000}", InvalidCharacter, 1),
            ("/\u{fff0}", InvalidCharacter, 1),
            ("/\u{1f600}", InvalidCharacter, 1),
        ];
        for &(p, problem, offset) in cases {
            assert_eq!(check(p), Err((problem, offset)), "{p:?}");
        }
    }

    #[test]
    fn sequential_prefix_may_end_with_slash() {
        assert!(validate_sequential_prefix("/jobs/").is_ok());
        assert!(validate_sequential_prefix("/jobs//").is_err());
        let err = validate("/a/").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPath);
        assert_eq!(err.code(), -8);
        assert_eq!(err.path(), Some("/a/"));
    }

    #[test]
    fn splits_and_joins() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/a", "/"));
    }

    #[test]
    fn sequence_suffix_is_ten_digits() {
        // Reference: docs/zookeeper-semantics.md A.5.
        assert_eq!(sequential_name("/q/n-", 0), "/q/n-0000000000");
        assert_eq!(sequential_name("/q/n-", 2147483647), "/q/n-2147483647");
        assert_eq!(sequential_name("/q/", -2147483648), "/q/-2147483648");
        assert_eq!(sequential_name("/q/", -5), "/q/-000000005");
    }
}
