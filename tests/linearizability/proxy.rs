//! A fault-injecting TCP proxy for tests: every connection is forwarded to
//! the target, and a seeded schedule adds delays, drops (the connection is
//! closed), resets (closed with SO_LINGER 0, so the peer sees RST) and
//! one-way stalls (one direction stops forwarding for a while).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How much trouble to make, per forwarded chunk (percent).
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    pub delay_percent: u64,
    pub delay_max_ms: u64,
    pub drop_percent: u64,
    pub reset_percent: u64,
    pub stall_percent: u64,
    pub stall_ms: u64,
}

impl Chaos {
    pub fn none() -> Chaos {
        Chaos {
            delay_percent: 0,
            delay_max_ms: 0,
            drop_percent: 0,
            reset_percent: 0,
            stall_percent: 0,
            stall_ms: 0,
        }
    }
}

/// What the proxy did, for the report.
#[derive(Debug, Default)]
pub struct Counts {
    pub connections: AtomicU64,
    pub delays: AtomicU64,
    pub drops: AtomicU64,
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
}

pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    calm: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    pub counts: Arc<Counts>,
}

/// The fault draws, shared by the proxy's connection threads.
struct Rng(Mutex<crate::random::Rng>);

impl Rng {
    fn next(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).next_u64()
    }
    fn chance(&self, percent: u64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .chance(percent)
    }
}

impl Proxy {
    /// Listens on `listen` (port 0: any) and forwards to `target`.
    pub fn start(listen: SocketAddr, target: SocketAddr, chaos: Chaos, seed: u64) -> Proxy {
        let listener = TcpListener::bind(listen).expect("proxy bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let calm = Arc::new(AtomicBool::new(false));
        let calm2 = calm.clone();
        let counts = Arc::new(Counts::default());
        let rng = Arc::new(Rng(Mutex::new(crate::random::Rng::seeded(seed))));
        let (stop2, counts2) = (stop.clone(), counts.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        counts2.connections.fetch_add(1, Ordering::Relaxed);
                        let _ = client.set_nonblocking(false);
                        let Ok(server) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(1))
                        else {
                            // Server down: the client sees the connection close.
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        for (from, to) in [
                            (client.try_clone(), server.try_clone()),
                            (server.try_clone(), client.try_clone()),
                        ] {
                            let (Ok(from), Ok(to)) = (from, to) else {
                                continue;
                            };
                            let (stop, calm, counts, rng) =
                                (stop2.clone(), calm2.clone(), counts2.clone(), rng.clone());
                            std::thread::spawn(move || {
                                pump(from, to, chaos, &stop, &calm, &counts, &rng)
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            addr,
            stop,
            calm,
            accept: Some(accept),
            counts,
        }
    }

    /// Stops injecting faults (for the checks after a run).
    pub fn calm(&self) {
        self.calm.store(true, Ordering::Relaxed);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{} connections, {} delays, {} drops, {} resets, {} one-way stalls",
            c.connections.load(Ordering::Relaxed),
            c.delays.load(Ordering::Relaxed),
            c.drops.load(Ordering::Relaxed),
            c.resets.load(Ordering::Relaxed),
            c.stalls.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn close(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    chaos: Chaos,
    stop: &AtomicBool,
    calm: &AtomicBool,
    counts: &Counts,
    rng: &Rng,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            close(&from, &to);
            return;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                close(&from, &to);
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => {
                close(&from, &to);
                return;
            }
        };
        if calm.load(Ordering::Relaxed) {
            if to.write_all(&buf[..n]).is_err() {
                close(&from, &to);
                return;
            }
            continue;
        }
        if rng.chance(chaos.drop_percent) {
            counts.drops.fetch_add(1, Ordering::Relaxed);
            close(&from, &to);
            return;
        }
        if rng.chance(chaos.reset_percent) {
            counts.resets.fetch_add(1, Ordering::Relaxed);
            // Abortive close: the peers see RST, not FIN.
            linger_zero(&from);
            linger_zero(&to);
            close(&from, &to);
            return;
        }
        if rng.chance(chaos.stall_percent) {
            counts.stalls.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(chaos.stall_ms));
        } else if rng.chance(chaos.delay_percent) {
            counts.delays.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(
                1 + rng.next() % chaos.delay_max_ms.max(1),
            ));
        }
        if to.write_all(&buf[..n]).is_err() {
            close(&from, &to);
            return;
        }
    }
}

/// Sets SO_LINGER to 0 so that closing the socket sends a reset.
#[allow(unsafe_code)]
fn linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid open socket and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
