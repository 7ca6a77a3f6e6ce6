//! One thread for the runtime's commits. Saves must not hold an async worker during an
//! fsync (on two cores, the executor, watches and API would wait), and they must not
//! run on tokio's blocking pool either: each of its threads gets a malloc arena of its
//! own, and multi-megabyte state documents spread over many arenas fragmented the
//! daemon to 996 MiB at 5,000 clusters (the same run peaked at 274 MiB with two arenas).
//! A single long-lived thread does every commit, in order.

use super::Store;
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Store) + Send>;

/// Runs closures against the store on its own thread; cheap to clone.
#[derive(Clone)]
pub struct StoreWriter {
    jobs: mpsc::Sender<Job>,
}

/// The writer thread is gone (it panicked): nothing more can be committed.
#[derive(Debug, thiserror::Error)]
#[error("the store's writer thread has stopped")]
pub struct WriterGone;

impl StoreWriter {
    /// Starts the thread; it ends when the last clone of the writer is dropped.
    pub fn start(store: Arc<Store>) -> StoreWriter {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ringmaster-store".into())
            .spawn(move || {
                super::ON_WRITER.set(true);
                // One checkpoint per batch: when no job waits (see `Store::open_daemon`).
                loop {
                    let job = match rx.try_recv() {
                        Ok(job) => job,
                        Err(mpsc::TryRecvError::Empty) => {
                            store.end_of_batch();
                            match rx.recv() {
                                Ok(job) => job,
                                Err(_) => break,
                            }
                        }
                        Err(mpsc::TryRecvError::Disconnected) => break,
                    };
                    job(&store);
                }
                store.end_of_batch();
            })
            .expect("spawning the store writer thread");
        StoreWriter { jobs }
    }

    /// Runs `f` on the writer thread and waits (asynchronously) for its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Store) -> T + Send + 'static) -> Result<T, WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |s: &Store| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| WriterGone)?;
        // The wait runs as a blocking task: it allocates nothing (the JSON stays on the
        // writer thread, see above), and tokio then knows work is under way outside the
        // runtime. Under a paused tokio clock (the simulation campaign) time does not
        // jump ahead while a blocking task runs, so a commit costs no simulated time;
        // awaited directly, an idle runtime would skip to its next timer, again and
        // again, for as long as the disk takes.
        tokio::task::spawn_blocking(move || rx.blocking_recv())
            .await
            .map_err(|_| WriterGone)?
            .map_err(|_| WriterGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_run_in_order_on_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("s.db")).unwrap());
        let w = StoreWriter::start(store);
        let a = w.run(|_| std::thread::current().id()).await.unwrap();
        let b = w.clone().run(|_| std::thread::current().id()).await.unwrap();
        assert_eq!(a, b, "one thread for every job");
        assert_ne!(a, std::thread::current().id());
    }

    /// Under a paused tokio clock, a commit that takes wall-clock time takes no
    /// simulated time, even with a timer pending: the campaign's runs depend on it
    /// (awaited directly, the idle runtime jumped to the timer, again and again).
    #[tokio::test(start_paused = true)]
    async fn a_commit_holds_a_paused_clock_still() {
        let dir = tempfile::tempdir().unwrap();
        let w = StoreWriter::start(Arc::new(Store::open(dir.path().join("s.db")).unwrap()));
        let timer = tokio::spawn(tokio::time::sleep(std::time::Duration::from_millis(1)));
        let t0 = tokio::time::Instant::now();
        w.run(|_| std::thread::sleep(std::time::Duration::from_millis(50)))
            .await
            .unwrap();
        assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
        timer.await.unwrap();
    }
}
