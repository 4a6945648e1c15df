//! The DIGEST-MD5 mechanism (RFC 2831), `auth` quality of protection only.
//!
//! The client computes, with `H` = MD5 and `HEX` its lower-case hex form:
//!
//! ```text
//! A1       = H(user ":" realm ":" password) ":" nonce ":" cnonce [":" authzid]
//! A2       = "AUTHENTICATE:" digest-uri
//! response = HEX(H(HEX(H(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2))))
//! ```
//!
//! and the server proves it knows the password with `rspauth`, the same
//! digest with `A2 = ":" digest-uri`. User, realm and password are hashed
//! in ISO 8859-1 when every character fits, else in UTF-8 (RFC 2831 2.1.2.1).

use md5::{Digest as _, Md5};

use crate::error::{Error, ErrorKind, Result};

/// The service name in ZooKeeper's `digest-uri` (`zookeeper/zk-sasl-md5`).
pub const SASL_PROTOCOL: &str = "zookeeper";

/// The server name and realm ZooKeeper uses for DIGEST-MD5.
pub const SASL_SERVER_NAME: &str = "zk-sasl-md5";

/// The only nonce count a single authentication uses.
const NONCE_COUNT: &str = "00000001";

/// Longest token either side accepts; a digest exchange is a few hundred bytes.
const TOKEN_BYTES_MAX: usize = 4096;

fn failed(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::AuthFailed).detail(why.into())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// ISO 8859-1 bytes when every character fits, else UTF-8 (RFC 2831 2.1.2.1).
fn hash_bytes(text: &str) -> Vec<u8> {
    if text.chars().all(|c| u32::from(c) < 256) {
        text.chars().map(|c| c as u8).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

/// The inputs of one digest computation.
struct DigestInput<'a> {
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    authzid: Option<&'a str>,
    digest_uri: &'a str,
}

impl DigestInput<'_> {
    /// `HEX(H(A1))`.
    fn ha1(&self) -> String {
        let mut inner = Md5::new();
        inner.update(hash_bytes(self.user));
        inner.update(b":");
        inner.update(hash_bytes(self.realm));
        inner.update(b":");
        inner.update(hash_bytes(self.password));
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(b":");
        a1.update(self.nonce.as_bytes());
        a1.update(b":");
        a1.update(self.cnonce.as_bytes());
        if let Some(authzid) = self.authzid {
            a1.update(b":");
            a1.update(authzid.as_bytes());
        }
        hex(&a1.finalize())
    }

    fn digest(&self, a2_prefix: &str) -> String {
        let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{}", self.digest_uri)));
        let kd = format!(
            "{}:{}:{NONCE_COUNT}:{}:auth:{ha2}",
            self.ha1(),
            self.nonce,
            self.cnonce
        );
        hex(&Md5::digest(kd))
    }

    /// The client's `response`.
    fn response(&self) -> String {
        self.digest("AUTHENTICATE")
    }

    /// The server's `rspauth`.
    fn rspauth(&self) -> String {
        self.digest("")
    }
}

/// Splits `key=value,key="quoted value",…` into pairs (RFC 2831's
/// `#(digest-challenge)` lists). Keys are lower-cased; quoted values are
/// unescaped. Fails on a malformed list or a repeated key (other than `realm`).
fn parse_directives(token: &[u8]) -> Result<Vec<(String, String)>> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(failed(format!("a SASL token of {} bytes", token.len())));
    }
    let text = std::str::from_utf8(token).map_err(|_| failed("a SASL token is not UTF-8"))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ',' {
                break;
            }
            key.push(c.to_ascii_lowercase());
            chars.next();
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(failed("a malformed SASL token: expected key=value"));
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(failed("a malformed SASL token: unclosed quote")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(failed("a malformed SASL token: unclosed quote")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value.truncate(value.trim_end().len());
        }
        if key != "realm" && pairs.iter().any(|(k, _)| *k == key) {
            return Err(failed(format!("a SASL token repeats {key:?}")));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn directive<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A quoted-string value with `"` and `\` escaped.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Compares two digests without an early exit on the first difference.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

// ---- client -----------------------------------------------------------------------

/// The client side of one DIGEST-MD5 authentication.
///
/// ```
/// use innkeeper::sasl::{DigestClient, DigestServer};
///
/// let mut server = DigestServer::new("nonce-1".into());
/// let mut client = DigestClient::new("bob", "secret");
/// let challenge = server.challenge();
/// let response = client.respond(&challenge, "cnonce-1")?;
/// let rspauth = server.check(&response, |user| (user == "bob").then(|| "secret".to_string()))?;
/// client.verify(&rspauth)?;
/// assert_eq!(server.authorized_id(), Some("bob"));
/// # Ok::<(), innkeeper::Error>(())
/// ```
#[derive(Clone)]
pub struct DigestClient {
    user: String,
    password: String,
    digest_uri: String,
    /// The `rspauth` the server must send once the response went out.
    expected_rspauth: Option<String>,
    complete: bool,
}

impl std::fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("DigestClient")
            .field("user", &self.user)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl DigestClient {
    /// A client for `user` with `password`, talking to a ZooKeeper server
    /// (`digest-uri` `zookeeper/zk-sasl-md5`).
    pub fn new(user: &str, password: &str) -> DigestClient {
        DigestClient {
            user: user.to_string(),
            password: password.to_string(),
            digest_uri: format!("{SASL_PROTOCOL}/{SASL_SERVER_NAME}"),
            expected_rspauth: None,
            complete: false,
        }
    }

    /// A client with another `digest-uri` (`service/host`), for RFC 2831's examples.
    pub fn with_digest_uri(mut self, digest_uri: &str) -> DigestClient {
        self.digest_uri = digest_uri.to_string();
        self
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The digest response to the server's `challenge`, with the client
    /// nonce `cnonce` (draw it with [`crate::sasl::random_nonce`]).
    ///
    /// Fails with `AuthFailed` for a challenge without a nonce, one that
    /// offers no `auth` quality of protection, or an algorithm other than `md5-sess`.
    pub fn respond(&mut self, challenge: &[u8], cnonce: &str) -> Result<Vec<u8>> {
        if self.expected_rspauth.is_some() {
            return Err(failed("a second DIGEST-MD5 challenge"));
        }
        let pairs = parse_directives(challenge)?;
        let nonce = directive(&pairs, "nonce")
            .ok_or_else(|| failed("the DIGEST-MD5 challenge has no nonce"))?;
        let qop = directive(&pairs, "qop").unwrap_or("auth");
        if !qop.split(',').any(|q| q.trim() == "auth") {
            return Err(failed(format!(
                "the server offers no qop this client speaks: {qop:?}"
            )));
        }
        match directive(&pairs, "algorithm") {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            other => {
                return Err(failed(format!(
                    "the DIGEST-MD5 challenge asks for algorithm {other:?}, not md5-sess"
                )))
            }
        }
        // The Java client takes the server's (first) realm.
        let realm = directive(&pairs, "realm").unwrap_or("");
        let utf8 = directive(&pairs, "charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
        let input = DigestInput {
            user: &self.user,
            realm,
            password: &self.password,
            nonce,
            cnonce,
            authzid: None,
            digest_uri: &self.digest_uri,
        };
        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!(
            "username={},realm={},nonce={},nc={NONCE_COUNT},cnonce={},digest-uri={},maxbuf=65536,response={},qop=auth",
            quoted(&self.user),
            quoted(realm),
            quoted(nonce),
            quoted(cnonce),
            quoted(&self.digest_uri),
            input.response(),
        ));
        self.expected_rspauth = Some(input.rspauth());
        Ok(out.into_bytes())
    }

    /// Checks the server's final token (`rspauth=…`): it proves the server
    /// knows the password. Fails with `AuthFailed` when it does not match.
    pub fn verify(&mut self, token: &[u8]) -> Result<()> {
        let expected = self
            .expected_rspauth
            .as_deref()
            .ok_or_else(|| failed("rspauth before the challenge"))?;
        let pairs = parse_directives(token)?;
        let got = directive(&pairs, "rspauth")
            .ok_or_else(|| failed("the server's last DIGEST-MD5 token has no rspauth"))?;
        if !same_digest(got, expected) {
            return Err(failed(
                "the server's rspauth does not match: it does not know the password",
            ));
        }
        self.complete = true;
        Ok(())
    }

    /// The exchange finished and the server proved itself.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

// ---- server -----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerStep {
    /// The challenge is to be sent.
    Start,
    /// The challenge went out; the response is awaited.
    Challenged,
    /// Authenticated as this user.
    Done(String),
    /// A response failed; nothing more is accepted.
    Failed,
}

/// The server side of one DIGEST-MD5 authentication, as ZooKeeper's server
/// runs it (realm and server name `zk-sasl-md5`, service `zookeeper`).
///
/// One nonce serves exactly one response: a second response, or a replay
/// of an earlier exchange's response, fails.
#[derive(Debug, Clone)]
pub struct DigestServer {
    realm: String,
    nonce: String,
    digest_uri: String,
    step: ServerStep,
}

impl DigestServer {
    /// A server with a fresh `nonce` (draw it with [`crate::sasl::random_nonce`]).
    pub fn new(nonce: String) -> DigestServer {
        DigestServer {
            realm: SASL_SERVER_NAME.to_string(),
            nonce,
            digest_uri: format!("{SASL_PROTOCOL}/{SASL_SERVER_NAME}"),
            step: ServerStep::Start,
        }
    }

    /// The challenge: the first token the server sends.
    pub fn challenge(&mut self) -> Vec<u8> {
        self.step = ServerStep::Challenged;
        format!(
            "realm={},nonce={},qop=\"auth\",charset=utf-8,algorithm=md5-sess",
            quoted(&self.realm),
            quoted(&self.nonce)
        )
        .into_bytes()
    }

    /// Checks the client's response; `password_of` looks a user's password
    /// up. Returns the `rspauth=…` token to send back. Every failure is
    /// `AuthFailed` and ends the exchange; the detail never holds a secret.
    pub fn check(
        &mut self,
        response: &[u8],
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Vec<u8>> {
        if self.step != ServerStep::Challenged {
            self.step = ServerStep::Failed;
            return Err(failed("a DIGEST-MD5 response out of turn"));
        }
        self.step = ServerStep::Failed;
        let pairs = parse_directives(response)?;
        let field = |key: &str| {
            directive(&pairs, key)
                .ok_or_else(|| failed(format!("the DIGEST-MD5 response has no {key}")))
        };
        let user = field("username")?;
        let nonce = field("nonce")?;
        let cnonce = field("cnonce")?;
        let response_digest = field("response")?;
        let realm = directive(&pairs, "realm").unwrap_or("");
        if nonce != self.nonce {
            return Err(failed("the DIGEST-MD5 response is for another nonce"));
        }
        if field("nc")? != NONCE_COUNT {
            return Err(failed(
                "the DIGEST-MD5 response has a nonce count other than 1",
            ));
        }
        if directive(&pairs, "qop").unwrap_or("auth") != "auth" {
            return Err(failed(
                "the DIGEST-MD5 response asks for a qop other than auth",
            ));
        }
        if realm != self.realm {
            return Err(failed(format!(
                "the DIGEST-MD5 response names realm {realm:?}"
            )));
        }
        let digest_uri = field("digest-uri")?;
        if digest_uri != self.digest_uri {
            return Err(failed(format!(
                "the DIGEST-MD5 response names digest-uri {digest_uri:?}"
            )));
        }
        let authzid = directive(&pairs, "authzid");
        if authzid.is_some_and(|a| a != user) {
            return Err(failed(format!(
                "user {user:?} may not act as another identity"
            )));
        }
        let Some(password) = password_of(user) else {
            return Err(failed(format!("no user {user:?} is configured")));
        };
        let input = DigestInput {
            user,
            realm,
            password: &password,
            nonce,
            cnonce,
            authzid,
            digest_uri,
        };
        if !same_digest(response_digest, &input.response()) {
            return Err(failed(format!("a wrong password for user {user:?}")));
        }
        let rspauth = format!("rspauth={}", input.rspauth()).into_bytes();
        self.step = ServerStep::Done(user.to_string());
        Ok(rspauth)
    }

    /// The authenticated user once [`DigestServer::check`] succeeded.
    pub fn authorized_id(&self) -> Option<&str> {
        match &self.step {
            ServerStep::Done(user) => Some(user),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4, the IMAP example: user chris, password secret.
    const RFC_CHALLENGE: &str = "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess,charset=utf-8";

    #[test]
    fn rfc_2831_example_response_and_rspauth() {
        let mut client =
            DigestClient::new("chris", "secret").with_digest_uri("imap/elwood.innosoft.com");
        let response = client
            .respond(RFC_CHALLENGE.as_bytes(), "OA6MHXh6VqTrRk")
            .unwrap();
        let pairs = parse_directives(&response).unwrap();
        assert_eq!(
            directive(&pairs, "response"),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
        assert_eq!(directive(&pairs, "nc"), Some("00000001"));
        assert_eq!(
            directive(&pairs, "digest-uri"),
            Some("imap/elwood.innosoft.com")
        );
        client
            .verify(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
            .unwrap();
        assert!(client.is_complete());
    }

    #[test]
    fn a_forged_rspauth_is_refused() {
        let mut client =
            DigestClient::new("chris", "secret").with_digest_uri("imap/elwood.innosoft.com");
        client
            .respond(RFC_CHALLENGE.as_bytes(), "OA6MHXh6VqTrRk")
            .unwrap();
        let err = client
            .verify(b"rspauth=ea40f60335c427b5527b84dbabcdfffe")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuthFailed);
        assert!(!client.is_complete());
    }

    fn users(user: &str) -> Option<String> {
        match user {
            "bob" => Some("bobsecret".into()),
            "ünï" => Some("pässwörd€".into()),
            _ => None,
        }
    }

    fn exchange(user: &str, password: &str) -> (DigestServer, Result<Vec<u8>>) {
        let mut server = DigestServer::new("n0nce".into());
        let mut client = DigestClient::new(user, password);
        let response = client.respond(&server.challenge(), "cn0nce").unwrap();
        let answer = server.check(&response, users);
        if let Ok(rspauth) = &answer {
            client.verify(rspauth).unwrap();
        }
        (server, answer)
    }

    #[test]
    fn server_and_client_agree_and_the_server_names_the_user() {
        let (server, answer) = exchange("bob", "bobsecret");
        assert!(answer.is_ok());
        assert_eq!(server.authorized_id(), Some("bob"));
        // Characters outside ISO 8859-1 are hashed in UTF-8, the others in 8859-1.
        let (server, answer) = exchange("ünï", "pässwörd€");
        assert!(answer.is_ok());
        assert_eq!(server.authorized_id(), Some("ünï"));
    }

    #[test]
    fn wrong_password_or_unknown_user_fails_without_naming_the_secret() {
        for (user, password) in [("bob", "guess"), ("eve", "bobsecret")] {
            let (server, answer) = exchange(user, password);
            let err = answer.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AuthFailed);
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("bobsecret") && !text.contains("guess"),
                "{text}"
            );
            assert_eq!(server.authorized_id(), None);
        }
    }

    #[test]
    fn a_replayed_response_is_refused() {
        // Same server, second response: the nonce was used.
        let mut server = DigestServer::new("n0nce".into());
        let mut client = DigestClient::new("bob", "bobsecret");
        let response = client.respond(&server.challenge(), "cn0nce").unwrap();
        server.check(&response, users).unwrap();
        let err = server.check(&response, users).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuthFailed);
        // A new exchange has a new nonce: the old response does not fit it.
        let mut later = DigestServer::new("other-n0nce".into());
        later.challenge();
        assert_eq!(
            later.check(&response, users).unwrap_err().kind(),
            ErrorKind::AuthFailed
        );
        assert_eq!(later.authorized_id(), None);
        // A response before any challenge.
        let mut fresh = DigestServer::new("n0nce".into());
        assert!(fresh.check(&response, users).is_err());
    }

    #[test]
    fn tampered_responses_are_refused() {
        let mut client = DigestClient::new("bob", "bobsecret");
        let mut probe = DigestServer::new("n0nce".into());
        let good =
            String::from_utf8(client.respond(&probe.challenge(), "cn0nce").unwrap()).unwrap();
        for tampered in [
            good.replace("nc=00000001", "nc=00000002"),
            good.replace("zookeeper/zk-sasl-md5", "imap/zk-sasl-md5"),
            good.replace("realm=\"zk-sasl-md5\"", "realm=\"other\""),
            good.replace("qop=auth", "qop=auth-int"),
            good.replace("username=\"bob\"", "username=\"bob\",authzid=\"super\""),
            good.replace("username=\"bob\",", ""),
            good.replace("response=", "response=0"),
            format!("{good},nonce=\"again\""),
            "username=\"bob\",nonce=\"unclosed".to_string(),
            "junk".to_string(),
            String::new(),
        ] {
            let mut server = DigestServer::new("n0nce".into());
            server.challenge();
            let err = server.check(tampered.as_bytes(), users).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AuthFailed, "{tampered}");
        }
        let mut server = DigestServer::new("n0nce".into());
        server.challenge();
        assert!(server.check(&[0xff, 0xfe], users).is_err());
        assert!(server
            .check(&vec![b'a'; TOKEN_BYTES_MAX + 1], users)
            .is_err());
    }

    #[test]
    fn challenges_the_client_cannot_answer_are_refused() {
        for challenge in [
            "realm=\"r\",qop=\"auth\",algorithm=md5-sess",
            "realm=\"r\",nonce=\"n\",qop=\"auth-conf\",algorithm=md5-sess",
            "realm=\"r\",nonce=\"n\",qop=\"auth\",algorithm=md5",
            "realm=\"r\",nonce=\"n\",nonce=\"m\",algorithm=md5-sess",
        ] {
            let mut client = DigestClient::new("bob", "x");
            let err = client.respond(challenge.as_bytes(), "c").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AuthFailed, "{challenge}");
        }
        // Quoted values with escapes and spaces around separators parse.
        let pairs =
            parse_directives(b" a = \"x\\\"y\" , b=tok ,realm=\"r1\",realm=\"r2\"").unwrap();
        assert_eq!(directive(&pairs, "a"), Some("x\"y"));
        assert_eq!(directive(&pairs, "b"), Some("tok"));
        assert_eq!(directive(&pairs, "realm"), Some("r1"));
    }

    #[test]
    fn debug_output_holds_no_password() {
        let client = DigestClient::new("bob", "bobsecret");
        assert!(!format!("{client:?}").contains("bobsecret"));
    }
}
