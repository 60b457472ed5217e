//! The changelog: every metadata change, in order, on disk before anyone
//! is told it happened.
//!
//! Format: text, one record per line, `<version>: <record text>\n`, as in
//! MooseFS (the record text is [`Record::to_text`](crate::meta::Record)).
//! `changelog.0.mfs` is the file being written; rotation renames `.N` to
//! `.N+1` and starts a new `.0`, keeping `BACK_LOGS` files.
//!
//! Group commit: callers append under the namespace lock (so file order is
//! apply order) by sending lines to one writer thread. The thread takes
//! every line waiting, writes them with one `write`, one `fdatasync`, and
//! then publishes the highest version now durable. Under load many clients
//! share one fsync; alone, a client waits for exactly one.
//!
//! A failed write or fsync ends the process: after it the master can no
//! longer promise that what it acknowledges survives, and a restart replays
//! everything that was durable (which is everything acknowledged).
//!
//! Reading tolerates a torn tail: replay stops at the first line that is
//! incomplete, does not parse, or does not continue the version sequence,
//! and says how many bytes it dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, oneshot, watch};

use crate::error::{Error, Result};

/// One changelog entry as it travels to metaloggers.
pub type Entry = Arc<(u64, String)>;

enum Cmd {
    Lines(Vec<(u64, String)>),
    Rotate(oneshot::Sender<Result<()>>),
}

/// The writing side, shared by every connection.
pub struct Changelog {
    tx: std::sync::Mutex<mpsc::Sender<Cmd>>,
    durable: watch::Receiver<u64>,
    feed: broadcast::Sender<Entry>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Path of changelog file `n` in `dir`.
pub fn file_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("changelog.{n}.mfs"))
}

impl Changelog {
    /// Opens `changelog.0.mfs` in `dir` for appending; `last` is the
    /// version already durable (the loaded state's version).
    pub fn open(dir: &Path, last: u64, fsync: bool, back_logs: u32) -> Result<Arc<Changelog>> {
        let path = file_path(dir, 0);
        let file = open_append(&path)?;
        // The file's name must outlive a power cut as surely as what is
        // fsynced into it.
        sync_dir(dir)?;
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable) = watch::channel(last);
        let (feed, _) = broadcast::channel(65_536);
        let writer = Writer { dir: dir.to_path_buf(), file, fsync, back_logs, durable: durable_tx, feed: feed.clone() };
        let thread = std::thread::Builder::new()
            .name("changelog".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io("start changelog thread", e))?;
        Ok(Arc::new(Changelog {
            tx: std::sync::Mutex::new(tx),
            durable,
            feed,
            thread: std::sync::Mutex::new(Some(thread)),
        }))
    }

    /// Queues lines for writing. Call under the namespace lock, in version
    /// order.
    pub fn append(&self, lines: Vec<(u64, String)>) {
        if lines.is_empty() {
            return;
        }
        debug_assert!(lines.windows(2).all(|w| w[1].0 == w[0].0 + 1), "versions out of order");
        self.send(Cmd::Lines(lines));
    }

    /// Waits until everything up to `version` is on disk.
    pub async fn durable(&self, version: u64) {
        let mut rx = self.durable.clone();
        // The sender lives in the writer thread, which only ends with the
        // process; a closed channel means shutdown, where waiting is moot.
        let _ = rx.wait_for(|&v| v >= version).await;
    }

    pub fn durable_version(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Starts a new `changelog.0.mfs` after everything queued so far; call
    /// under the namespace lock right after taking a snapshot, so the new
    /// file begins with the first change the snapshot lacks.
    pub fn rotate(&self) -> oneshot::Receiver<Result<()>> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Rotate(reply));
        rx
    }

    /// Entries as they are written, for metaloggers.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.feed.subscribe()
    }

    fn send(&self, cmd: Cmd) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.send(cmd).is_err() {
            fatal("the changelog writer is gone");
        }
    }

    /// Flushes everything queued and stops the writer.
    pub fn close(&self) {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut *self.tx.lock().unwrap_or_else(|e| e.into_inner()), tx));
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

fn fatal(why: &str) -> ! {
    tracing::error!("changelog: {why}; stopping so that nothing unsaved is acknowledged");
    std::process::exit(70)
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

struct Writer {
    dir: PathBuf,
    file: File,
    fsync: bool,
    back_logs: u32,
    durable: watch::Sender<u64>,
    feed: broadcast::Sender<Entry>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut buf = Vec::with_capacity(1 << 16);
        while let Ok(first) = rx.recv() {
            let mut cmds = vec![first];
            cmds.extend(rx.try_iter());
            let mut last = None;
            for cmd in cmds {
                match cmd {
                    Cmd::Lines(lines) => {
                        for (version, text) in lines {
                            buf.extend_from_slice(format!("{version}: {text}\n").as_bytes());
                            last = Some(version);
                            let _ = self.feed.send(Arc::new((version, text)));
                        }
                    }
                    Cmd::Rotate(reply) => {
                        self.flush(&mut buf, last.take());
                        let _ = reply.send(self.rotate());
                    }
                }
            }
            self.flush(&mut buf, last);
        }
        self.flush(&mut buf, None);
    }

    fn flush(&mut self, buf: &mut Vec<u8>, last: Option<u64>) {
        if !buf.is_empty() {
            if let Err(e) = self.file.write_all(buf) {
                fatal(&format!("write failed: {e}"));
            }
            buf.clear();
            if self.fsync {
                if let Err(e) = self.file.sync_data() {
                    fatal(&format!("fsync failed: {e}"));
                }
            }
        }
        if let Some(version) = last {
            self.durable.send_replace(version);
        }
    }

    fn rotate(&mut self) -> Result<()> {
        if let Err(e) = self.file.sync_all() {
            fatal(&format!("fsync failed: {e}"));
        }
        shift_files(&self.dir, self.back_logs)?;
        self.file = open_append(&file_path(&self.dir, 0))?;
        sync_dir(&self.dir)
    }
}

/// Renames `changelog.N.mfs` to `N+1` (dropping the one past `back_logs`),
/// leaving no `changelog.0.mfs`. At start this also sets aside a file whose
/// tail may be torn, so new entries never follow garbage.
pub fn shift_files(dir: &Path, back_logs: u32) -> Result<()> {
    let _ = std::fs::remove_file(file_path(dir, back_logs));
    for n in (0..back_logs).rev() {
        let from = file_path(dir, n);
        if from.exists() {
            std::fs::rename(&from, file_path(dir, n + 1))
                .map_err(|e| Error::io(format!("rotate {}", from.display()), e))?;
        }
    }
    Ok(())
}

/// Makes renames and creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("fsync {}", dir.display()), e))
}

/// What reading one changelog file found.
#[derive(Debug, Default)]
pub struct ReadLog {
    pub entries: Vec<(u64, String)>,
    /// Why reading stopped early, and how many bytes were left unread.
    pub dropped: Option<(String, u64)>,
}

/// Reads the consecutive, complete entries at the start of `path`.
pub fn read_file(path: &Path) -> Result<ReadLog> {
    let file = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::new(file);
    let mut out = ReadLog::default();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        let why = match parse_line(&line) {
            Ok((version, text)) => match out.entries.last() {
                Some(&(prev, _)) if version != prev + 1 => Some(format!("version {version} does not follow {prev}")),
                _ => {
                    out.entries.push((version, text));
                    offset += n as u64;
                    None
                }
            },
            Err(why) => Some(why),
        };
        if let Some(why) = why {
            out.dropped = Some((format!("{}: at byte {offset}: {why}", path.display()), size - offset));
            break;
        }
    }
    Ok(out)
}

fn parse_line(line: &[u8]) -> std::result::Result<(u64, String), String> {
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err("incomplete last line".into());
    };
    let text = std::str::from_utf8(body).map_err(|_| "line is not UTF-8".to_string())?;
    let (version, rest) = text.split_once(": ").ok_or("no `<version>: ` prefix")?;
    let version: u64 = version.parse().map_err(|_| format!("bad version {version:?}"))?;
    Ok((version, rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn appended_lines_become_durable_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = Changelog::open(dir.path(), 0, true, 3).unwrap();
        let mut feed = log.subscribe();
        log.append(vec![(1, "1|A(1)".into()), (2, "2|B(x)".into())]);
        runtime().block_on(log.durable(2));
        assert_eq!(log.durable_version(), 2);
        assert_eq!(feed.try_recv().unwrap().0, 1);
        drop(log.rotate());
        log.append(vec![(3, "3|C()".into())]);
        log.close();
        let old = read_file(&file_path(dir.path(), 1)).unwrap();
        assert_eq!(old.entries, vec![(1, "1|A(1)".to_string()), (2, "2|B(x)".to_string())]);
        assert!(old.dropped.is_none());
        assert_eq!(read_file(&file_path(dir.path(), 0)).unwrap().entries, vec![(3, "3|C()".to_string())]);
    }

    #[test]
    fn a_torn_tail_is_dropped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("changelog.0.mfs");
        std::fs::write(&path, "5: 1|A(1)\n6: 1|B(2)\n7: 1|C(\0\0\0").unwrap();
        let read = read_file(&path).unwrap();
        assert_eq!(read.entries.len(), 2);
        let (why, bytes) = read.dropped.unwrap();
        assert!(why.contains("incomplete"), "{why}");
        assert_eq!(bytes, 10);
        std::fs::write(&path, "5: 1|A(1)\n7: 1|B(2)\n").unwrap();
        let read = read_file(&path).unwrap();
        assert_eq!(read.entries.len(), 1);
        assert!(read.dropped.unwrap().0.contains("does not follow"));
    }
}
