//! What TLS and SASL cost a `RemoteSession`: connect time and synchronous
//! getData/setData latency, plain vs TLS, side by side in one run, against
//! `innkeeper serve` started here and, optionally, Apache ZooKeeper 3.8.
//!
//! ```sh
//! cargo run --release --example tls_cost
//! # with ZooKeeper's plain and TLS ports and the CA that signed its certificate:
//! cargo run --release --example tls_cost -- 127.0.0.1:2181 127.0.0.1:2281 ca.pem
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use innkeeper::server::{SaslUsers, SecurePort, Server, ServerConfig};
use innkeeper::{Coordinator, CreateMode, Keeper, RemoteBuilder, RemoteSession};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

const CALLS: usize = 3000;
const CONNECTS: usize = 30;

/// A CA and a server certificate for 127.0.0.1, written to `dir`.
fn certificates(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let mut server = CertificateParams::new(Vec::<String>::new()).unwrap();
    server.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let key = KeyPair::generate().unwrap();
    let cert = server
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let idx = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[idx].as_secs_f64() * 1e6
}

struct Figures {
    connect_us: f64,
    get: (f64, f64),
    set: (f64, f64),
}

fn measure(make: &dyn Fn() -> RemoteBuilder) -> Figures {
    let started = Instant::now();
    let mut close_errors = 0;
    for _ in 0..CONNECTS {
        let s = make().connect().expect("connect");
        if let Err(e) = s.close() {
            close_errors += 1;
            if close_errors == 1 {
                eprintln!("close: {e}");
            }
        }
    }
    if close_errors > 0 {
        eprintln!("{close_errors} of {CONNECTS} closes failed");
    }
    let connect_us = started.elapsed().as_secs_f64() * 1e6 / CONNECTS as f64;
    let session = make().connect().expect("connect");
    let path = format!("/tls-cost-{}", std::process::id());
    let _ = session.create(&path, &[7u8; 100], CreateMode::Ephemeral);
    for _ in 0..200 {
        session.get_data(&path).unwrap();
    }
    let times = |op: &dyn Fn()| {
        let mut all: Vec<Duration> = (0..CALLS)
            .map(|_| {
                let t = Instant::now();
                op();
                t.elapsed()
            })
            .collect();
        all.sort();
        (percentile(&all, 50), percentile(&all, 99))
    };
    let get = times(&|| {
        session.get_data(&path).unwrap();
    });
    let set = times(&|| {
        session.set_data(&path, &[8u8; 100], -1).unwrap();
    });
    let _ = session.close();
    Figures {
        connect_us,
        get,
        set,
    }
}

fn row(name: &str, plain: &Figures, tls: &Figures) {
    println!(
        "| {name} connect (µs) | {:.0} | {:.0} | {:.2}× |",
        plain.connect_us,
        tls.connect_us,
        tls.connect_us / plain.connect_us
    );
    println!(
        "| {name} getData p50 / p99 (µs) | {:.0} / {:.0} | {:.0} / {:.0} | {:.2}× / {:.2}× |",
        plain.get.0,
        plain.get.1,
        tls.get.0,
        tls.get.1,
        tls.get.0 / plain.get.0,
        tls.get.1 / plain.get.1
    );
    println!(
        "| {name} setData p50 / p99 (µs) | {:.0} / {:.0} | {:.0} / {:.0} | {:.2}× / {:.2}× |",
        plain.set.0,
        plain.set.1,
        tls.set.0,
        tls.set.1,
        tls.set.0 / plain.set.0,
        tls.set.1 / plain.set.1
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let keeper = Keeper::in_memory().unwrap();
    let files = innkeeper::TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: None,
        client_auth: None,
    };
    let config = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        secure: Some(SecurePort {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: Arc::new(innkeeper::ServerTls::new(files).unwrap()),
        }),
        sasl_users: SaslUsers::from_jaas(
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"s\"; };",
        )
        .unwrap(),
        ..ServerConfig::default()
    };
    let server = Server::start(keeper, config).unwrap();
    let builder = |addr: String| {
        move || {
            RemoteSession::builder(&addr)
                .session_timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(10))
        }
    };
    let ca: PathBuf = dir.path().join("ca.pem");
    println!("| {CALLS} sync calls, {CONNECTS} connects | plain | TLS | TLS / plain |");
    println!("|---|---|---|---|");
    let plain = measure(&builder(server.local_addr().to_string()));
    let secure_addr = server.secure_addr().unwrap().to_string();
    let tls = measure(&{
        let ca = ca.clone();
        let b = builder(secure_addr.clone());
        move || b().tls(&ca)
    });
    row("innkeeper", &plain, &tls);
    let sasl = measure(&{
        let b = builder(server.local_addr().to_string());
        move || b().sasl_digest("bob", "s")
    });
    println!(
        "| innkeeper connect with SASL DIGEST-MD5 (µs) | {:.0} | {:.0} (SASL, plain) | {:.2}× |",
        plain.connect_us,
        sasl.connect_us,
        sasl.connect_us / plain.connect_us
    );
    if let [zk_plain, zk_tls, zk_ca] = args.as_slice() {
        let plain = measure(&builder(zk_plain.clone()));
        let zk_ca = PathBuf::from(zk_ca);
        let tls = measure(&{
            let b = builder(zk_tls.clone());
            move || b().tls(&zk_ca)
        });
        row("ZooKeeper", &plain, &tls);
    }
}
