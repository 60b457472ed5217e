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
//!
//! The queue is a mutex and a condition variable rather than a channel:
//! crossbeam's receivers spin and then `sched_yield` several times before
//! they sleep, and with two dozen idle workers on two cores that spinning
//! was a tenth of the mount's CPU in a small-file create run (perf), on
//! top of the context switches it was meant to save. An idle worker here
//! sleeps at once, and a job wakes one sleeper (no system call when none
//! sleeps).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers asleep on `ready`.
    asleep: usize,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job, or `None` once stopping and drained.
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if let Some(job) = q.jobs.pop_front() {
                return Some(job);
            }
            if q.stopping {
                return None;
            }
            q.asleep += 1;
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            q.asleep -= 1;
        }
    }
}

/// A fixed pool of worker threads fed from one queue.
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` threads; `n` is at least 1.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        assert!(n > 0, "at least one worker");
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { jobs: VecDeque::new(), asleep: 0, stopping: false }),
            ready: Condvar::new(),
        });
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let sh = Arc::clone(&shared);
            let t = std::thread::Builder::new().name(format!("fuse-{i}")).spawn(move || {
                while let Some(job) = sh.next() {
                    // A panicking handler loses its request (the dropped
                    // reply answers EIO), not the worker.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a FUSE request handler panicked; the request got EIO");
                    }
                }
            })?;
            threads.push(t);
        }
        Ok(Workers { shared, threads })
    }

    /// Queues `job`. After `stop` it runs on the caller's thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let mut q = self.shared.lock();
        if q.stopping {
            drop(q);
            job();
            return;
        }
        q.jobs.push_back(Box::new(job));
        // A busy worker may be stuck on the master for seconds, so a
        // sleeping one is woken whenever there is one; only when all are
        // busy is there no wake-up call.
        let wake = q.asleep > 0;
        drop(q);
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Lets the queued jobs finish and joins the threads.
    pub fn stop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.ready.notify_all();
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
