//! The changelog: every metadata change, in order, on disk before anyone
//! is told it happened.
//!
//! Format: text, one record per line, `<version>: <record text>\n`, as in
//! MooseFS (the record text is [`Record::to_text`](crate::meta::Record)).
//! `changelog.0.mfs` is the file being written; rotation renames `.N` to
//! `.N+1` and starts a new `.0`, keeping `BACK_LOGS` files.
//!
//! Group commit: callers append under the namespace lock (so file order is
//! apply order) by queueing lines for one writer thread. The thread takes
//! every line waiting (after letting a batch gather, see `Pace`), writes
//! them with one `write`, one `fdatasync`, and then publishes the highest
//! version now durable. Under load many clients share one fsync; alone, a
//! client waits for exactly one.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot, watch};

use crate::error::{Error, Result};

/// One changelog entry as it travels to metaloggers.
pub type Entry = Arc<(u64, String)>;

enum Cmd {
    Lines(Vec<(u64, String)>),
    Rotate(oneshot::Sender<Result<()>>),
}

/// What appenders hand the writer thread. A mutex and a condition variable
/// rather than a channel: the writer is woken only when it sleeps, not once
/// per append, which at tens of thousands of changes a second is much of
/// what the changelog would otherwise cost.
#[derive(Default)]
struct Queue {
    cmds: Vec<Cmd>,
    /// Lines in `cmds`, for the group-commit wait.
    lines: usize,
    /// The writer sleeps on the condition variable and must be woken.
    asleep: bool,
    closed: bool,
}

struct Inbox {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, cmd: Cmd) {
        let mut q = self.lock();
        if q.closed {
            drop(q);
            fatal("the changelog writer is gone");
        }
        if let Cmd::Lines(lines) = &cmd {
            q.lines += lines.len();
        }
        q.cmds.push(cmd);
        let wake = q.asleep;
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// The writing side, shared by every connection.
pub struct Changelog {
    inbox: Arc<Inbox>,
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
        let inbox = Arc::new(Inbox { queue: Mutex::new(Queue::default()), wake: Condvar::new() });
        let (durable_tx, durable) = watch::channel(last);
        let (feed, _) = broadcast::channel(65_536);
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            fsync,
            back_logs,
            durable: durable_tx,
            feed: feed.clone(),
            pace: Pace::default(),
        };
        let thread_inbox = inbox.clone();
        let thread = std::thread::Builder::new()
            .name("changelog".into())
            .spawn(move || writer.run(&thread_inbox))
            .map_err(|e| Error::io("start changelog thread", e))?;
        Ok(Arc::new(Changelog { inbox, durable, feed, thread: std::sync::Mutex::new(Some(thread)) }))
    }

    /// Queues lines for writing. Call under the namespace lock, in version
    /// order.
    pub fn append(&self, lines: Vec<(u64, String)>) {
        if lines.is_empty() {
            return;
        }
        debug_assert!(lines.windows(2).all(|w| w[1].0 == w[0].0 + 1), "versions out of order");
        self.inbox.push(Cmd::Lines(lines));
    }

    /// Waits until everything up to `version` is on disk.
    pub async fn durable(&self, version: u64) {
        if *self.durable.borrow() >= version {
            return;
        }
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
        self.inbox.push(Cmd::Rotate(reply));
        rx
    }

    /// Entries as they are written, for metaloggers.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.feed.subscribe()
    }

    /// Flushes everything queued and stops the writer.
    pub fn close(&self) {
        self.inbox.lock().closed = true;
        self.inbox.wake.notify_one();
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

/// How long the writer lets a batch gather before writing it.
///
/// With fsync: clients answered by one fsync come back at about the same
/// time, a round trip later. Starting the next fsync on the first of them
/// leaves the rest for the fsync after, and the clients settle into groups
/// that take turns, each waiting out the other's fsync. So when fewer lines
/// are waiting than recent batches held, the writer waits for the others,
/// at most as long as an fsync takes; a lone client never waits (its
/// batches hold one line).
///
/// Without fsync nobody waits for the writer, so it gathers for a
/// millisecond and writes once, instead of waking for every change.
#[derive(Default)]
struct Pace {
    /// The largest batch among the last `WINDOW` batches, and its age.
    recent_max: usize,
    age: u32,
    /// Moving average of one fsync, in microseconds.
    fsync_us: u64,
    /// Batches and lines written, for the closing log line.
    batches: u64,
    lines: u64,
}

impl Pace {
    const WINDOW: u32 = 64;
    const UNSYNCED_GATHER: Duration = Duration::from_millis(1);

    fn gather(&self, fsync: bool) -> Duration {
        if !fsync {
            return Self::UNSYNCED_GATHER;
        }
        Duration::from_micros(self.fsync_us.min(2_000))
    }

    fn wanted(&self, fsync: bool) -> usize {
        if fsync {
            self.recent_max
        } else {
            usize::MAX
        }
    }

    fn record(&mut self, lines: usize, fsync_took: Option<Duration>) {
        self.batches += 1;
        self.lines += lines as u64;
        self.age += 1;
        if lines >= self.recent_max || self.age >= Self::WINDOW {
            self.recent_max = lines;
            self.age = 0;
        }
        if let Some(took) = fsync_took {
            let us = took.as_micros().min(u128::from(u32::MAX)) as u64;
            self.fsync_us = if self.fsync_us == 0 { us } else { (self.fsync_us * 7 + us) / 8 };
        }
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    fsync: bool,
    back_logs: u32,
    durable: watch::Sender<u64>,
    feed: broadcast::Sender<Entry>,
    pace: Pace,
}

impl Writer {
    fn run(mut self, inbox: &Inbox) {
        let mut buf = Vec::with_capacity(1 << 16);
        while let Some(cmds) = self.next_batch(inbox) {
            let mut last = None;
            let mut lines = 0;
            for cmd in cmds {
                match cmd {
                    Cmd::Lines(batch) => {
                        for (version, text) in batch {
                            buf.extend_from_slice(format!("{version}: {text}\n").as_bytes());
                            last = Some(version);
                            lines += 1;
                            let _ = self.feed.send(Arc::new((version, text)));
                        }
                    }
                    Cmd::Rotate(reply) => {
                        self.flush(&mut buf, last.take(), std::mem::take(&mut lines));
                        let _ = reply.send(self.rotate());
                    }
                }
            }
            self.flush(&mut buf, last, lines);
        }
        tracing::info!(
            batches = self.pace.batches,
            lines = self.pace.lines,
            fsync_us = self.pace.fsync_us,
            "changelog closed"
        );
    }

    /// Waits for work and lets the batch gather (see [`Pace`]); `None` once
    /// closed and drained.
    fn next_batch(&self, inbox: &Inbox) -> Option<Vec<Cmd>> {
        let mut q = inbox.lock();
        while q.cmds.is_empty() {
            if q.closed {
                return None;
            }
            q.asleep = true;
            q = inbox.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            q.asleep = false;
        }
        let wanted = self.pace.wanted(self.fsync);
        if q.lines < wanted && !q.closed {
            let until = Instant::now() + self.pace.gather(self.fsync);
            // Without fsync nobody needs to wake the writer early.
            q.asleep = self.fsync;
            while q.lines < wanted && !q.closed {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                q = inbox.wake.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
            }
            q.asleep = false;
        }
        q.lines = 0;
        Some(std::mem::take(&mut q.cmds))
    }

    fn flush(&mut self, buf: &mut Vec<u8>, last: Option<u64>, lines: usize) {
        let mut took = None;
        if !buf.is_empty() {
            if let Err(e) = self.file.write_all(buf) {
                fatal(&format!("write failed: {e}"));
            }
            buf.clear();
            if self.fsync {
                let start = Instant::now();
                if let Err(e) = self.file.sync_data() {
                    fatal(&format!("fsync failed: {e}"));
                }
                took = Some(start.elapsed());
            }
        }
        if lines > 0 {
            self.pace.record(lines, took);
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
    fn the_writer_waits_only_for_clients_seen_lately_and_never_past_an_fsync() {
        let mut pace = Pace::default();
        pace.record(1, Some(Duration::from_micros(300)));
        assert_eq!(pace.wanted(true), 1, "a lone client never waits");
        pace.record(8, Some(Duration::from_micros(300)));
        pace.record(3, Some(Duration::from_micros(300)));
        assert_eq!(pace.wanted(true), 8);
        assert_eq!(pace.gather(true), Duration::from_micros(300));
        for _ in 0..Pace::WINDOW {
            pace.record(1, Some(Duration::from_secs(1)));
        }
        assert_eq!(pace.wanted(true), 1, "the clients that left are forgotten");
        assert_eq!(pace.gather(true), Duration::from_millis(2), "the wait stays bounded");
        assert_eq!(pace.wanted(false), usize::MAX);
        assert_eq!(pace.gather(false), Pace::UNSYNCED_GATHER);
    }

    #[test]
    fn close_writes_what_is_queued_without_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let log = Changelog::open(dir.path(), 0, false, 3).unwrap();
        for v in 1..=100u64 {
            log.append(vec![(v, format!("{v}|A({v})"))]);
        }
        log.close();
        assert_eq!(log.durable_version(), 100);
        assert_eq!(read_file(&file_path(dir.path(), 0)).unwrap().entries.len(), 100);
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
