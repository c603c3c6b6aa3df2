//! The analysis pool: a few OS threads that run the calls' CPU work ([`attune_core::call::CallAnalyzer`])
//! so that tokio's worker threads only move bytes. A session hands over one job at a time (its
//! analyzer moves into the job and back), so a call's chunks are analysed in order and a call
//! that falls behind holds back only its own stream (gRPC flow control), never the others.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::metrics::ServiceMetrics;

type Job = Box<dyn FnOnce() + Send>;

/// The pool was shut down (the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the analysis pool has shut down")]
pub struct PoolClosed;

/// A fixed set of analysis threads fed by one queue.
pub struct AnalysisPool {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<ServiceMetrics>,
}

impl AnalysisPool {
    /// Starts `threads` analysis threads (at least one).
    pub fn new(threads: usize, metrics: Arc<ServiceMetrics>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("attune-analysis-{i}"))
                    .spawn(move || {
                        loop {
                            // The guard is a temporary: the lock is held only while waiting.
                            let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })?,
            );
        }
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(handles),
            metrics,
        })
    }

    /// Runs `work` on an analysis thread and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolClosed> {
        let (done, result) = oneshot::channel();
        let metrics = self.metrics.clone();
        let queued_at = Instant::now();
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let value = work();
            let wait_ns = started.duration_since(queued_at).as_nanos() as u64;
            let busy_ns = started.elapsed().as_nanos() as u64;
            metrics.analysis_jobs.fetch_add(1, Ordering::Relaxed);
            metrics
                .analysis_busy_ns
                .fetch_add(busy_ns, Ordering::Relaxed);
            metrics
                .analysis_queue_wait_ns
                .fetch_add(wait_ns, Ordering::Relaxed);
            metrics
                .analysis_queue_wait_max_ns
                .fetch_max(wait_ns, Ordering::Relaxed);
            let _ = done.send(value);
        });
        {
            let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            let sender = sender.as_ref().ok_or(PoolClosed)?;
            sender.send(job).map_err(|_| PoolClosed)?;
        }
        result.await.map_err(|_| PoolClosed)
    }

    /// Stops taking jobs, lets queued jobs finish and joins the threads.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for AnalysisPool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
