//! Commands on a data directory, with no server: `inspect`, `backup`,
//! `restore`, and the read-only view the client commands use with
//! `--data-dir`.

use std::path::Path;

use innkeeper::{Error, ErrorKind, Keeper};

/// A read-only, in-memory copy of the store in `dir`.
pub fn open(dir: &Path) -> Result<Keeper, Error> {
    Keeper::builder().open_read_only(dir)
}

/// `inspect`: counts, sizes and an integrity check of every record. Fails
/// (non-zero exit) when a record is damaged.
pub fn inspect(dir: &Path) -> Result<(), Error> {
    let report = Keeper::inspect_store(dir)?;
    let snapshot_bytes: u64 = report.snapshots.iter().map(|s| s.bytes).sum();
    outln!("store:      {}", dir.display());
    outln!("last zxid:  {:#x}", report.last_zxid);
    outln!("nodes:      {}", report.node_count);
    outln!("sessions:   {}", report.session_count);
    if report.log_records == 0 {
        outln!("log:        empty, {} bytes", report.log_bytes);
    } else {
        outln!(
            "log:        {} records (zxid {:#x} to {:#x}), {} bytes",
            report.log_records,
            report.log_first_zxid,
            report.log_last_zxid,
            report.log_bytes
        );
    }
    outln!(
        "snapshots:  {} ({snapshot_bytes} bytes)",
        report.snapshots.len()
    );
    for snapshot in &report.snapshots {
        outln!(
            "  {}  zxid {:#x}  {} bytes  {}",
            snapshot
                .path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            snapshot.zxid,
            snapshot.bytes,
            if snapshot.ok { "ok" } else { "DAMAGED" }
        );
    }
    if report.problems.is_empty() {
        outln!("integrity:  ok (every log record and snapshot decoded and checked)");
        Ok(())
    } else {
        outln!("integrity:  {} problems", report.problems.len());
        for problem in &report.problems {
            outln!("  {problem}");
        }
        Err(Error::new(ErrorKind::Corrupted).detail(format!(
            "{}: {} damaged records",
            dir.display(),
            report.problems.len()
        )))
    }
}

/// `backup --data-dir DIR FILE`.
pub fn backup(dir: &Path, file: &Path) -> Result<(), Error> {
    let keeper = open(dir)?;
    let zxid = keeper.backup(file)?;
    eprintln!(
        "innkeeper: backed up {} at zxid {zxid:#x} to {}",
        dir.display(),
        file.display()
    );
    Ok(())
}

/// `restore FILE --data-dir DIR`: DIR must be missing or empty.
pub fn restore(file: &Path, dir: &Path) -> Result<(), Error> {
    let keeper = Keeper::builder().restore(file, dir)?;
    let zxid = keeper.last_zxid();
    keeper.shutdown()?;
    eprintln!(
        "innkeeper: restored {} (zxid {zxid:#x}) into {}",
        file.display(),
        dir.display()
    );
    Ok(())
}
