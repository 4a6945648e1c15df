//! The byte stream under a remote session: a TCP socket, plain or in TLS.
//!
//! The session's background thread reads and callers write, at the same
//! time. On a plain socket each uses its own handle. In TLS both go through
//! one rustls connection, so it sits behind its own lock: the reader reads
//! raw bytes from the socket without holding it, then takes it to decrypt;
//! a writer takes it to encrypt and send. Lock order: the session's
//! `shared` lock before this one; the reader never holds both.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::ServerName;

use crate::proto::FrameSplitter;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// One connection to a server.
pub(super) struct Link {
    socket: TcpStream,
    tls: Option<Arc<Mutex<rustls::ClientConnection>>>,
}

impl Link {
    pub(super) fn plain(socket: TcpStream) -> Link {
        Link { socket, tls: None }
    }

    /// Runs the TLS handshake on `socket`, checking the server's
    /// certificate against `server_name`, within `deadline`.
    pub(super) fn tls(
        socket: TcpStream,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        deadline: Instant,
    ) -> std::io::Result<Link> {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| {
            std::io::Error::new(
                IoErrorKind::InvalidInput,
                format!("{server_name:?} is not a TLS server name: {e}"),
            )
        })?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| std::io::Error::new(IoErrorKind::InvalidInput, e))?;
        let mut stream: &TcpStream = &socket;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    IoErrorKind::TimedOut,
                    "timed out in the TLS handshake",
                ));
            }
            socket.set_read_timeout(Some(left))?;
            conn.complete_io(&mut stream).map_err(|e| {
                if e.kind() == IoErrorKind::WouldBlock {
                    std::io::Error::new(IoErrorKind::TimedOut, "timed out in the TLS handshake")
                } else {
                    e
                }
            })?;
        }
        Ok(Link {
            socket,
            tls: Some(Arc::new(Mutex::new(conn))),
        })
    }

    pub(super) fn try_clone(&self) -> std::io::Result<Link> {
        Ok(Link {
            socket: self.socket.try_clone()?,
            tls: self.tls.clone(),
        })
    }

    pub(super) fn set_write_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.socket.set_write_timeout(Some(timeout))
    }

    /// Sends `bytes` (encrypted in TLS).
    pub(super) fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut socket: &TcpStream = &self.socket;
        match &self.tls {
            None => socket.write_all(bytes),
            Some(tls) => {
                let mut conn = tls.lock();
                conn.writer().write_all(bytes)?;
                while conn.wants_write() {
                    conn.write_tls(&mut socket)?;
                }
                Ok(())
            }
        }
    }

    /// Closes both directions; a reader blocked on the socket wakes up.
    pub(super) fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Reads what arrives within `wait` into `splitter`; `Ok(false)` when
    /// nothing came.
    pub(super) fn read_some(
        &self,
        splitter: &mut FrameSplitter,
        wait: Duration,
    ) -> std::io::Result<bool> {
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        let mut reader: &TcpStream = &self.socket;
        let n = match reader.read(&mut buf) {
            Ok(0) => return Err(closed()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    IoErrorKind::WouldBlock | IoErrorKind::TimedOut | IoErrorKind::Interrupted
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        match &self.tls {
            None => splitter.push(&buf[..n]),
            Some(tls) => {
                let mut conn = tls.lock();
                let mut raw = &buf[..n];
                while !raw.is_empty() {
                    conn.read_tls(&mut raw)?;
                    let state = conn
                        .process_new_packets()
                        .map_err(|e| std::io::Error::new(IoErrorKind::InvalidData, e))?;
                    let mut left = state.plaintext_bytes_to_read();
                    while left > 0 {
                        let mut plain = vec![0u8; left];
                        let got = conn.reader().read(&mut plain)?;
                        splitter.push(&plain[..got]);
                        left -= got;
                    }
                    if state.peer_has_closed() {
                        return Err(closed());
                    }
                }
                let mut socket: &TcpStream = &self.socket;
                while conn.wants_write() {
                    conn.write_tls(&mut socket)?;
                }
            }
        }
        Ok(true)
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        IoErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}
