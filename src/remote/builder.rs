//! [`RemoteBuilder`]: the options of a [`RemoteSession`] and `connect`,
//! which starts the session's thread and waits for the first session.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::event::{ClientWatches, Dispatch, KeeperState, Watcher};
use crate::random::Rng;

use super::address::ConnectString;
use super::{Inner, RemoteSession, RemoteTls, SaslLogin, Shared, CONNECT_TIMEOUT_MIN_DEFAULT};

/// Options for a [`RemoteSession`]; start with [`RemoteSession::builder`].
#[derive(Debug, Clone)]
pub struct RemoteBuilder {
    connect_string: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    auth: Vec<(String, Vec<u8>)>,
    resume: Option<(i64, Vec<u8>)>,
    tls: Option<TlsOptions>,
    sasl: Option<SaslLogin>,
}

/// TLS options of a [`RemoteBuilder`]: files, read when connecting.
#[derive(Debug, Clone, Default)]
struct TlsOptions {
    ca_file: PathBuf,
    client_identity: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
}

impl RemoteBuilder {
    /// The session timeout to ask for (default 30 s, as zkCli asks). The
    /// server clamps it into its range (2 to 20 ticks by default).
    pub fn session_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.session_timeout = timeout;
        self
    }

    /// How long [`RemoteBuilder::connect`] tries to reach a server before
    /// failing with `ConnectionLoss` (default: the session timeout, and at
    /// least 2 s). The time given here is honoured as it is, however short.
    pub fn connect_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The longest any call waits, for a connection and then for its reply
    /// (default: the session timeout the server granted). A call that gets no reply in time
    /// fails with `OperationTimeout`; one that finds no connection in time
    /// fails with `ConnectionLoss`.
    pub fn request_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.request_timeout = Some(timeout);
        self
    }

    /// A credential sent right after the handshake, before anything else
    /// (like `addauth` before the first request).
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> RemoteBuilder {
        self.auth.push((scheme.to_string(), auth.to_vec()));
        self
    }

    /// Speaks TLS to the servers (ZooKeeper's `secureClientPort`), trusting
    /// the CA certificates of the PEM file `ca_file`. The server's
    /// certificate must name the host of the connect string (as an IP
    /// address or DNS name), as the Java client checks it by default; see
    /// [`RemoteBuilder::tls_server_name`] for another name. TLS 1.2 and 1.3.
    ///
    /// [`RemoteBuilder::connect`] fails with `BadArguments` when the file
    /// cannot be read; a handshake that fails (an untrusted server) counts
    /// as an unreachable server, and its cause is in the error.
    pub fn tls(mut self, ca_file: impl Into<PathBuf>) -> RemoteBuilder {
        self.tls.get_or_insert_with(TlsOptions::default).ca_file = ca_file.into();
        self
    }

    /// A client certificate (PEM chain) and its private key (PEM), for a
    /// server that asks for one (`ssl.clientAuth` want or need). The server
    /// then knows the session as `x509:` the certificate's subject.
    /// Only meaningful with [`RemoteBuilder::tls`].
    pub fn tls_client_cert(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> RemoteBuilder {
        self.tls
            .get_or_insert_with(TlsOptions::default)
            .client_identity = Some((cert_file.into(), key_file.into()));
        self
    }

    /// The name the server certificates must carry, instead of each host
    /// of the connect string.
    pub fn tls_server_name(mut self, name: &str) -> RemoteBuilder {
        self.tls.get_or_insert_with(TlsOptions::default).server_name = Some(name.to_string());
        self
    }

    /// Logs in with SASL DIGEST-MD5 as `user` after every handshake, as the
    /// Java client does with a JAAS `Client` section; the session is then
    /// `sasl:USER` in ACLs. The login is repeated after every reconnect.
    /// A refused login ends the session handle with `AuthFailed`.
    /// Kerberos (GSSAPI) is not supported.
    pub fn sasl_digest(mut self, user: &str, password: &str) -> RemoteBuilder {
        self.sasl = Some(SaslLogin {
            user: user.to_string(),
            password: password.to_string(),
        });
        self
    }

    /// Resumes an existing session instead of creating one (the id and
    /// password of [`RemoteSession::session_id`](crate::Coordinator::session_id) and
    /// [`RemoteSession::password`]). A session the ensemble no longer
    /// knows fails with `SessionExpired`.
    pub fn resume(mut self, session_id: i64, password: &[u8]) -> RemoteBuilder {
        self.resume = Some((session_id, password.to_vec()));
        self
    }

    /// Connects to one server of the list and establishes the session.
    ///
    /// Fails with `BadArguments` for a malformed connect string,
    /// `ConnectionLoss` when no server answered within the connect
    /// timeout (its detail names the last cause: `connection refused`,
    /// `cannot resolve`, `timed out`, or another I/O error), `SessionExpired`
    /// when resuming a dead session, and `AuthFailed` when a credential was refused.
    pub fn connect(self) -> Result<RemoteSession> {
        let parsed = ConnectString::parse(&self.connect_string)?;
        let mut hosts = parsed.hosts;
        // Spread the clients over the ensemble, as the Java client's
        // `StaticHostProvider` does.
        Rng::from_os().shuffle(&mut hosts);
        let requested_ms = i32::try_from(self.session_timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let connect_timeout = self
            .connect_timeout
            .unwrap_or(self.session_timeout.max(CONNECT_TIMEOUT_MIN_DEFAULT));
        let (session_id, password) = self.resume.unwrap_or((0, vec![0; 16]));
        let tls = match &self.tls {
            None => None,
            Some(options) => {
                if options.ca_file.as_os_str().is_empty() {
                    return Err(Error::new(ErrorKind::BadArguments)
                        .detail("TLS options without a CA file (RemoteBuilder::tls)"));
                }
                let identity = options
                    .client_identity
                    .as_ref()
                    .map(|(cert, key)| (cert.as_path(), key.as_path()));
                Some(RemoteTls {
                    config: crate::tls::client_config(&options.ca_file, identity)?,
                    server_name: options.server_name.clone(),
                })
            }
        };
        let inner = Arc::new(Inner {
            hosts,
            tls,
            sasl: self.sasl.clone(),
            chroot: parsed.chroot,
            requested_ms,
            request_timeout: self.request_timeout,
            shared: Mutex::new(Shared {
                state: KeeperState::Disconnected,
                close_sent: false,
                writer: None,
                server: None,
                pending: VecDeque::new(),
                auth_waiters: VecDeque::new(),
                next_xid: 1,
                session_id,
                password,
                negotiated_ms: requested_ms,
                last_zxid: 0,
                last_sent: Instant::now(),
                auth: self.auth,
                closing: false,
                connecting: None,
                last_failure: None,
                thread_done: false,
            }),
            changed: Condvar::new(),
            watches: Mutex::new(ClientWatches::default()),
            default_watcher: Watcher::default_target(),
            dispatch: Dispatch::new("innkeeper-remote-events"),
        });
        let thread_inner = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("innkeeper-remote".into())
            .spawn(move || {
                let inner = Arc::clone(&thread_inner);
                thread_inner.run();
                inner.shared.lock().thread_done = true;
                inner.changed.notify_all();
            })
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(format!("spawn: {e}")))?;
        let session = RemoteSession {
            inner,
            thread: Mutex::new(Some(thread)),
        };
        let deadline = Instant::now() + connect_timeout;
        let mut shared = session.inner.shared.lock();
        loop {
            match shared.state {
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly => break,
                KeeperState::Expired => {
                    drop(shared);
                    session.stop();
                    return Err(Error::new(ErrorKind::SessionExpired)
                        .detail("the ensemble no longer knows the session"));
                }
                KeeperState::AuthFailed => {
                    let cause = shared.last_failure.clone();
                    drop(shared);
                    session.stop();
                    let error = Error::new(ErrorKind::AuthFailed);
                    return Err(match cause {
                        Some(cause) => error.detail(cause),
                        None => error,
                    });
                }
                _ => {}
            }
            if session
                .inner
                .changed
                .wait_until(&mut shared, deadline)
                .timed_out()
            {
                let cause = shared
                    .last_failure
                    .clone()
                    .unwrap_or_else(|| "timed out: no server answered yet".to_string());
                drop(shared);
                session.stop();
                return Err(Error::new(ErrorKind::ConnectionLoss).detail(format!(
                    "no server of {:?} established a session within {connect_timeout:?} \
                     (the connect timeout); last attempt: {cause}",
                    self.connect_string
                )));
            }
        }
        drop(shared);
        Ok(session)
    }
}

impl RemoteSession {
    /// Connects with a session timeout and the default options; see
    /// [`RemoteSession::builder`] for the others.
    pub fn connect(connect_string: &str, session_timeout: Duration) -> Result<RemoteSession> {
        RemoteSession::builder(connect_string)
            .session_timeout(session_timeout)
            .connect()
    }

    /// A builder for a session on the ensemble of `connect_string`
    /// (`host[:port],…[/chroot]`; the port defaults to 2181).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use innkeeper::{Coordinator, RemoteSession};
    ///
    /// let zk = RemoteSession::builder("zk1:2181,zk2:2181,zk3:2181/service")
    ///     .session_timeout(Duration::from_secs(10))
    ///     .request_timeout(Duration::from_secs(5))
    ///     .auth("digest", b"app:secret")
    ///     .connect()?;
    /// println!("session {:#x} on {:?}", zk.session_id(), zk.server());
    /// # Ok::<(), innkeeper::Error>(())
    /// ```
    pub fn builder(connect_string: &str) -> RemoteBuilder {
        RemoteBuilder {
            connect_string: connect_string.to_string(),
            session_timeout: Duration::from_secs(30),
            connect_timeout: None,
            request_timeout: None,
            auth: Vec::new(),
            resume: None,
            tls: None,
            sasl: None,
        }
    }
}
