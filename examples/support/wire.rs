//! A small blocking ZooKeeper wire client on `innkeeper::proto`, shared by
//! the load and benchmark examples. It speaks to any ZooKeeper-compatible
//! server, so the same load runs against innkeeper and Apache ZooKeeper.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use innkeeper::proto::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_request, encode_request, xid, ConnectRequest, CreateKind, CreateRequest,
    FrameSplitter, GetDataRequest, ReplyHeader, Request, Response, SetDataRequest, WatcherEvent,
};
use innkeeper::Acl;

pub struct Client {
    pub stream: TcpStream,
    splitter: FrameSplitter,
    buf: Vec<u8>,
    next_xid: i32,
    pub session_id: i64,
    /// Notifications seen while reading replies.
    pub events: Vec<(Instant, WatcherEvent)>,
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl Client {
    /// Connects and opens a session, retrying refused/reset connections
    /// until `deadline` (servers that are still starting).
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> io::Result<Client> {
        Client::connect_patiently(addr, timeout_ms, Duration::from_secs(2))
    }

    /// `connect`, giving up on a handshake answer after `patience` (a
    /// server that is still starting may accept and never answer).
    pub fn connect_patiently(
        addr: SocketAddr,
        timeout_ms: i32,
        patience: Duration,
    ) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, patience)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(patience))?;
        let mut c = Client {
            stream,
            splitter: FrameSplitter::with_max_len(16 << 20),
            buf: vec![0; 64 << 10],
            next_xid: 0,
            session_id: 0,
            events: Vec::new(),
        };
        c.stream
            .write_all(&encode_connect_request(&ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            }))?;
        let body = c.read_frame()?;
        let resp = decode_connect_response(&body).map_err(|e| other(e.to_string()))?;
        if resp.timeout_ms <= 0 {
            return Err(other("session refused"));
        }
        c.session_id = resp.session_id;
        c.stream.set_read_timeout(None)?;
        Ok(c)
    }

    /// Like `connect`, retrying for up to `wait`.
    pub fn connect_retry(addr: SocketAddr, timeout_ms: i32, wait: Duration) -> io::Result<Client> {
        let deadline = Instant::now() + wait;
        loop {
            // Short patience: a probe that hangs is retried at once.
            match Client::connect_patiently(addr, timeout_ms, Duration::from_millis(100)) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(f) = self
                .splitter
                .next_frame()
                .map_err(|e| other(e.to_string()))?
            {
                return Ok(f);
            }
            let n = self.stream.read(&mut self.buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.splitter.push(&self.buf[..n]);
        }
    }

    /// Reads whatever is available without blocking; returns notifications read.
    pub fn poll_events(&mut self) -> io::Result<usize> {
        self.stream.set_nonblocking(true)?;
        let mut n_events = 0;
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    self.stream.set_nonblocking(false)?;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => self.splitter.push(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.stream.set_nonblocking(false)?;
        while let Some(f) = self
            .splitter
            .next_frame()
            .map_err(|e| other(e.to_string()))?
        {
            if let Ok((_, event)) = decode_notification(&f) {
                self.events.push((Instant::now(), event));
                n_events += 1;
            }
        }
        Ok(n_events)
    }

    pub fn send(&mut self, request: &Request) -> io::Result<i32> {
        let xid = match request {
            Request::Ping => xid::PING,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        self.stream.write_all(&encode_request(xid, request))?;
        Ok(xid)
    }

    /// Reads the next reply (notifications go to `events`).
    pub fn reply(&mut self, opcode: i32) -> io::Result<(ReplyHeader, Option<Response>)> {
        loop {
            let body = self.read_frame()?;
            let header = decode_reply_header(&body).map_err(|e| other(e.to_string()))?;
            if header.xid == xid::NOTIFICATION {
                if let Ok((_, event)) = decode_notification(&body) {
                    self.events.push((Instant::now(), event));
                }
                continue;
            }
            return decode_reply(opcode, &body).map_err(|e| other(e.to_string()));
        }
    }

    /// Sends and waits; an error code becomes an `Err`.
    pub fn call(&mut self, request: &Request) -> io::Result<Option<Response>> {
        self.send(request)?;
        let (h, r) = self.reply(request.opcode())?;
        if h.err != 0 {
            return Err(other(format!("error {}", h.err)));
        }
        Ok(r)
    }

    /// Sends and waits; returns the error code.
    pub fn call_code(&mut self, request: &Request) -> io::Result<i32> {
        self.send(request)?;
        Ok(self.reply(request.opcode())?.0.err)
    }

    /// Writes all requests, then reads all replies (pipelining).
    pub fn pipeline(&mut self, requests: &[Request]) -> io::Result<()> {
        let mut out = Vec::new();
        for r in requests {
            self.next_xid += 1;
            out.extend_from_slice(&encode_request(self.next_xid, r));
        }
        // Write from a helper thread's view is not needed: the server reads
        // while we write as long as our receive buffer drains, so interleave
        // in chunks.
        let mut sent = 0;
        let mut received = 0;
        let chunk = 64 << 10;
        while sent < out.len() || received < requests.len() {
            if sent < out.len() {
                let end = (sent + chunk).min(out.len());
                self.stream.write_all(&out[sent..end])?;
                sent = end;
            }
            // Read what has arrived so far without blocking, then block only
            // once everything is written.
            if sent < out.len() {
                self.stream.set_nonblocking(true)?;
                loop {
                    match self.stream.read(&mut self.buf) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => self.splitter.push(&self.buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                self.stream.set_nonblocking(false)?;
                while let Some(f) = self
                    .splitter
                    .next_frame()
                    .map_err(|e| other(e.to_string()))?
                {
                    received += count_reply(&f, &mut self.events)?;
                }
            } else {
                let f = self.read_frame()?;
                received += count_reply(&f, &mut self.events)?;
            }
        }
        Ok(())
    }
}

impl Client {
    /// Sends `n` requests made by `make(i)` with at most `window`
    /// outstanding, like an async client, and returns each one's time from
    /// its send to its reply, in order (a session's replies come in request
    /// order). Any error reply fails the run.
    pub fn pipeline_window_timed(
        &mut self,
        n: usize,
        window: usize,
        mut make: impl FnMut(usize) -> Request,
    ) -> io::Result<Vec<Timed>> {
        let window = window.max(1);
        let mut sent_at: std::collections::VecDeque<Instant> =
            std::collections::VecDeque::with_capacity(window);
        let mut latencies = Vec::with_capacity(n);
        let mut sent = 0;
        let mut out = Vec::new();
        while latencies.len() < n {
            out.clear();
            let now = Instant::now();
            while sent < n && sent_at.len() < window {
                self.next_xid += 1;
                out.extend_from_slice(&encode_request(self.next_xid, &make(sent)));
                sent_at.push_back(now);
                sent += 1;
            }
            if !out.is_empty() {
                self.stream.write_all(&out)?;
            }
            let f = self.read_frame()?;
            let mut replies = count_reply(&f, &mut self.events)?;
            while let Some(f) = self
                .splitter
                .next_frame()
                .map_err(|e| other(e.to_string()))?
            {
                replies += count_reply(&f, &mut self.events)?;
            }
            let done = Instant::now();
            for _ in 0..replies {
                if let Some(t) = sent_at.pop_front() {
                    latencies.push(Timed {
                        sent: t,
                        latency: done - t,
                    });
                }
            }
        }
        Ok(latencies)
    }
}

/// One request of [`Client::pipeline_window_timed`]: when it was sent and
/// how long its reply took.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub sent: Instant,
    pub latency: Duration,
}

impl Client {
    /// Keeps at most `window` requests outstanding until all are answered,
    /// like an async client with that many requests in flight.
    pub fn pipeline_window(&mut self, requests: &[Request], window: usize) -> io::Result<()> {
        let window = window.max(1);
        let mut sent = 0;
        let mut received = 0;
        let mut out = Vec::new();
        while received < requests.len() {
            out.clear();
            while sent < requests.len() && sent - received < window {
                self.next_xid += 1;
                out.extend_from_slice(&encode_request(self.next_xid, &requests[sent]));
                sent += 1;
            }
            if !out.is_empty() {
                self.stream.write_all(&out)?;
            }
            // One reply (blocking), then whatever else is already here.
            let f = self.read_frame()?;
            received += count_reply(&f, &mut self.events)?;
            while let Some(f) = self
                .splitter
                .next_frame()
                .map_err(|e| other(e.to_string()))?
            {
                received += count_reply(&f, &mut self.events)?;
            }
        }
        Ok(())
    }
}

pub fn delete(path: &str) -> Request {
    Request::Delete(innkeeper::proto::DeleteRequest {
        path: path.to_string(),
        version: -1,
    })
}

fn count_reply(frame: &[u8], events: &mut Vec<(Instant, WatcherEvent)>) -> io::Result<usize> {
    let h = decode_reply_header(frame).map_err(|e| other(e.to_string()))?;
    if h.xid == xid::NOTIFICATION {
        if let Ok((_, e)) = decode_notification(frame) {
            events.push((Instant::now(), e));
        }
        return Ok(0);
    }
    if h.err != 0 {
        return Err(other(format!("error {} in a pipelined reply", h.err)));
    }
    Ok(1)
}

pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: path.to_string(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
    })
}

pub fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.to_string(),
        watch,
    })
}

pub fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.to_string(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

/// Resident memory of a process in KiB (Linux), 0 when unknown.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// Threads of a process (Linux), 0 when unknown.
pub fn threads(pid: u32) -> u64 {
    proc_status(pid, "Threads:")
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Spawns `innkeeper serve` on an ephemeral port and returns the child and
/// the address from its ready line.
pub fn spawn_innkeeper(
    bin: &std::path::Path,
    extra: &[&str],
) -> io::Result<(std::process::Child, SocketAddr, Duration)> {
    let mut args = vec!["--in-memory"];
    args.extend_from_slice(extra);
    spawn_innkeeper_with(bin, &args)
}

/// Starts `innkeeper serve` on a free port with exactly these extra flags
/// (durable unless they say `--in-memory`).
pub fn spawn_innkeeper_with(
    bin: &std::path::Path,
    extra: &[&str],
) -> io::Result<(std::process::Child, SocketAddr, Duration)> {
    use std::io::BufRead;
    let started = Instant::now();
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--port", "0", "--max-client-connections", "0"])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| other("no stderr"))?;
    let mut lines = io::BufReader::new(stderr).lines();
    let line = lines.next().ok_or_else(|| other("no ready line"))??;
    let ready = started.elapsed();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse::<SocketAddr>().ok())
        .ok_or_else(|| other(format!("no address in {line:?}")))?;
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr, ready))
}

/// The `innkeeper` binary next to this example (target/<profile>/innkeeper).
pub fn innkeeper_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    dir.join("innkeeper")
}
