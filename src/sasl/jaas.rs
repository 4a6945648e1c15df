//! JAAS login configuration files, as ZooKeeper reads them for SASL:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! Client {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     username="bob"
//!     password="bobsecret";
//! };
//! ```
//!
//! A file is a list of sections `NAME { ENTRY; … };`, an entry is a login
//! module class, a control flag and `key=value` options (values quoted or
//! bare). `//` and `/* */` comments are skipped, as Java's `ConfigFile` does.

use crate::error::{Error, ErrorKind, Result};

/// The login module ZooKeeper's DIGEST-MD5 users are configured with.
const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// A parsed JAAS file.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct JaasFile {
    /// The sections in file order.
    pub sections: Vec<JaasSection>,
}

/// One `NAME { … };` section.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasSection {
    /// The section name (`Server`, `Client`, …).
    pub name: String,
    /// The login entries in order.
    pub entries: Vec<JaasEntry>,
}

/// One login module entry.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The module class.
    pub module: String,
    /// The control flag (`required`, `requisite`, `sufficient`, `optional`).
    pub flag: String,
    /// The options in order, values unquoted.
    pub options: Vec<(String, String)>,
}

// Passwords never go to a log through Debug.
impl std::fmt::Debug for JaasFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.sections).finish()
    }
}

impl std::fmt::Debug for JaasSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasSection")
            .field("name", &self.name)
            .field("entries", &self.entries)
            .finish()
    }
}

impl std::fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("JaasEntry")
            .field("module", &self.module)
            .field("flag", &self.flag)
            .field("option_keys", &keys)
            .finish()
    }
}

fn bad(line: usize, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::BadArguments).detail(format!("JAAS file, line {line}: {why}"))
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = '\0';
                loop {
                    match chars.next() {
                        None => return Err(bad(start, "an unclosed /* comment")),
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                    }
                }
            }
            '{' | '}' | ';' | '=' => tokens.push((line, Token::Punct(c))),
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(bad(start, "an unclosed quote")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => value.push(c),
                            None => return Err(bad(start, "an unclosed quote")),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            value.push(c);
                        }
                    }
                }
                tokens.push((start, Token::Quoted(value)));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                tokens.push((line, Token::Word(word)));
            }
        }
    }
    Ok(tokens)
}

impl JaasFile {
    /// Parses the text of a JAAS file. Fails with `BadArguments` naming
    /// the line of the first error.
    pub fn parse(text: &str) -> Result<JaasFile> {
        let tokens = tokenize(text)?;
        let mut at = tokens.into_iter().peekable();
        let mut sections = Vec::new();
        while let Some((line, token)) = at.next() {
            let Token::Word(name) = token else {
                return Err(bad(line, "expected a section name"));
            };
            match at.next() {
                Some((_, Token::Punct('{'))) => {}
                _ => return Err(bad(line, format!("expected '{{' after {name:?}"))),
            }
            let mut entries = Vec::new();
            loop {
                match at.next() {
                    Some((_, Token::Punct('}'))) => break,
                    Some((line, Token::Word(module))) => {
                        let flag = match at.next() {
                            Some((_, Token::Word(flag))) => flag,
                            _ => return Err(bad(line, format!("expected a flag after {module}"))),
                        };
                        if !["required", "requisite", "sufficient", "optional"]
                            .iter()
                            .any(|f| flag.eq_ignore_ascii_case(f))
                        {
                            return Err(bad(line, format!("unknown control flag {flag:?}")));
                        }
                        let mut options = Vec::new();
                        loop {
                            match at.next() {
                                Some((_, Token::Punct(';'))) => break,
                                Some((line, Token::Word(key))) => {
                                    match at.next() {
                                        Some((_, Token::Punct('='))) => {}
                                        _ => {
                                            return Err(bad(
                                                line,
                                                format!("expected '=' after {key}"),
                                            ))
                                        }
                                    }
                                    let value = match at.next() {
                                        Some((_, Token::Quoted(v) | Token::Word(v))) => v,
                                        _ => {
                                            return Err(bad(
                                                line,
                                                format!("expected a value for {key}"),
                                            ))
                                        }
                                    };
                                    options.push((key, value));
                                }
                                Some((line, _)) => {
                                    return Err(bad(line, "expected an option or ';'"))
                                }
                                None => return Err(bad(line, "the file ends inside an entry")),
                            }
                        }
                        entries.push(JaasEntry {
                            module,
                            flag: flag.to_ascii_lowercase(),
                            options,
                        });
                    }
                    Some((line, _)) => return Err(bad(line, "expected a login module or '}'")),
                    None => return Err(bad(line, format!("section {name:?} is not closed"))),
                }
            }
            match at.next() {
                Some((_, Token::Punct(';'))) => {}
                _ => return Err(bad(line, format!("expected ';' after section {name:?}"))),
            }
            sections.push(JaasSection { name, entries });
        }
        Ok(JaasFile { sections })
    }

    /// The section named `name` (the first one, as Java does with duplicates).
    pub fn section(&self, name: &str) -> Option<&JaasSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The DIGEST-MD5 users of section `name` (ZooKeeper's `Server`):
    /// the `user_NAME="password"` options of its `DigestLoginModule` entry.
    pub fn digest_users(&self, name: &str) -> Vec<(String, String)> {
        self.digest_entry(name)
            .map(|entry| {
                entry
                    .options
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("user_")
                            .filter(|user| !user.is_empty())
                            .map(|user| (user.to_string(), v.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The DIGEST-MD5 credential of section `name` (ZooKeeper's `Client`):
    /// its `username` and `password` options.
    pub fn digest_credential(&self, name: &str) -> Option<(String, String)> {
        let entry = self.digest_entry(name)?;
        let get = |key: &str| {
            entry
                .options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        Some((get("username")?, get("password")?))
    }

    fn digest_entry(&self, name: &str) -> Option<&JaasEntry> {
        self.section(name)?
            .entries
            .iter()
            .find(|e| e.module == DIGEST_LOGIN_MODULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZOOKEEPER_STYLE: &str = r#"
// Users of the server.
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob;secret";
};
/* The client
   side. */
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="bob;secret";
};
Other { com.example.Krb5LoginModule optional useKeyTab=true debug = "true" ; } ;
"#;

    #[test]
    fn zookeeper_sections_parse() {
        let file = JaasFile::parse(ZOOKEEPER_STYLE).unwrap();
        assert_eq!(file.sections.len(), 3);
        assert_eq!(
            file.digest_users("Server"),
            vec![
                ("super".to_string(), "adminsecret".to_string()),
                ("bob".to_string(), "bob;secret".to_string())
            ]
        );
        assert_eq!(
            file.digest_credential("Client"),
            Some(("bob".to_string(), "bob;secret".to_string()))
        );
        let other = file.section("Other").unwrap();
        assert_eq!(other.entries[0].flag, "optional");
        assert_eq!(
            other.entries[0].options,
            vec![
                ("useKeyTab".to_string(), "true".to_string()),
                ("debug".to_string(), "true".to_string())
            ]
        );
        assert!(file.digest_users("Other").is_empty());
        assert!(file.digest_users("Missing").is_empty());
        assert_eq!(file.digest_credential("Server"), None);
        // Debug output names no password.
        assert!(!format!("{file:?}").contains("secret"));
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, line) in [
            ("Server {\n m required\n a=\"x;\n};", 3),
            ("Server {\n m required a=1;\n", 1),
            ("Server {\n m sometimes;\n};", 2),
            ("Server\n m required;", 1),
            ("Server {\n m required a;\n};", 2),
            ("Server {\n m required;\n}", 1),
            ("/* never closed", 1),
            ("{ };", 1),
        ] {
            let err = JaasFile::parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadArguments, "{text}");
            let detail = err.detail_message().unwrap_or("");
            assert!(
                detail.contains(&format!("line {line}:")),
                "{text}: {detail}"
            );
        }
        assert_eq!(JaasFile::parse("").unwrap(), JaasFile::default());
    }
}
