//! The threads that serve FUSE requests.
//!
//! fuser reads requests on one thread; a request that waits on the master
//! or a chunkserver would hold up every other one behind it (a random
//! reader at queue depth 16 got one read at a time). So each request runs
//! on one of a fixed set of worker threads and replies from there: fuser's
//! reply objects are `Send`, and a reply dropped unanswered (a panic in a
//! handler) reaches the kernel as `EIO`.
//!
//! Ordering between requests is the kernel's business, as with mfsmount's
//! thread pool: a system call's requests are sent one after another (a
//! write is answered before the close that flushes it), and requests that
//! may overlap (several writes of one file in flight) are ordered by the
//! file layer's own locks.

use crossbeam_channel::{unbounded, Sender};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of worker threads fed from one queue.
pub struct Workers {
    queue: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` threads; `n` is at least 1.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        assert!(n > 0, "at least one worker");
        let (tx, rx) = unbounded::<Job>();
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rx = rx.clone();
            let t = std::thread::Builder::new().name(format!("fuse-{i}")).spawn(move || {
                for job in rx {
                    // A panicking handler loses its request (the dropped
                    // reply answers EIO), not the worker.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a FUSE request handler panicked; the request got EIO");
                    }
                }
            })?;
            threads.push(t);
        }
        Ok(Workers { queue: Some(tx), threads })
    }

    /// Queues `job`. After `stop` it runs on the caller's thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        match &self.queue {
            Some(q) => {
                if let Err(e) = q.send(Box::new(job)) {
                    (e.into_inner())();
                }
            }
            None => job(),
        }
    }

    /// Lets the queued jobs finish and joins the threads.
    pub fn stop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn jobs_run_concurrently_and_all_finish_before_stop_returns() {
        let mut w = Workers::start(4).unwrap();
        // Four jobs that each wait for the other three: only concurrent
        // workers get past the barrier.
        let barrier = Arc::new(Barrier::new(4));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (b, d) = (barrier.clone(), done.clone());
            w.run(move || {
                b.wait();
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
        let d = done.clone();
        w.run(move || panic!("a handler bug {}", d.load(Ordering::SeqCst)));
        let d = done.clone();
        w.run(move || {
            d.fetch_add(1, Ordering::SeqCst);
        });
        w.stop();
        assert_eq!(done.load(Ordering::SeqCst), 5, "a panic costs its own job only");
        w.run(|| {});
    }
}
