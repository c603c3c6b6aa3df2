//! Sound-card capture (cargo feature `capture`, cpal/ALSA): the agent's microphone and the
//! call's far end as one input stream (stereo: one party per channel; mono: the agent only),
//! delivered as `f32` chunks on a channel, away from the audio thread.
//!
//! The audio callback never allocates, locks or logs: it fills buffers taken from a fixed pool
//! and hands them over; when the consumer falls behind and the pool is empty, the callback drops
//! the audio and counts it ([`CaptureStats::dropped_samples`]) rather than block the sound card.
//!
//! Headless testing: the ALSA `file` plugin with `infile=` feeds a raw S16_LE file as the
//! capture device. It is not paced and repeats stale data after the file's end, so callers
//! stop after exactly the file's frame count (`max_frames`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// Buffers in the pool between the audio thread and the consumer.
const POOL_BUFFERS: usize = 64;

/// What can go wrong opening the sound card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error("no capture device named {0:?} (list them with `attune capture --list`)")]
    NoSuchDevice(String),
    #[error("no default capture device")]
    NoDefaultDevice,
    #[error("capture device {device}: {what}: {source}")]
    Device {
        device: String,
        what: &'static str,
        source: cpal::Error,
    },
    #[error("capture: {0} channels requested; 1 (agent only) or 2 (agent + caller) supported")]
    Channels(u16),
}

/// Counters shared with the audio thread.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Interleaved samples delivered to the consumer.
    pub delivered_samples: AtomicU64,
    /// Interleaved samples dropped because the consumer fell behind.
    pub dropped_samples: AtomicU64,
    /// Stream errors reported by the driver (e.g. overruns).
    pub stream_errors: AtomicU64,
}

/// Settings of a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Device id as cpal prints it (e.g. `alsa:default`), or None for the default device.
    pub device: Option<String>,
    pub sample_rate_hz: u32,
    /// 1 or 2.
    pub channels: u16,
    /// Samples per channel in one delivered chunk.
    pub chunk_frames: usize,
    /// Make the audio thread wait for the consumer instead of dropping audio. Only for devices
    /// that are not real-time (a file fed through the ALSA `file` plugin): a real sound card
    /// would overrun.
    pub lossless: bool,
}

/// A running capture. Dropping it stops the stream.
pub struct Capture {
    // Field order is drop order: the channels go first, so an audio thread waiting for a free
    // buffer (lossless mode) wakes up before the stream is stopped and joined.
    chunks: Receiver<Vec<f32>>,
    pool: SyncSender<Vec<f32>>,
    pub stats: Arc<CaptureStats>,
    pub device_name: String,
    _stream: cpal::Stream,
}

impl Capture {
    /// Opens the device and starts capturing 16-bit samples at the requested rate and layout.
    pub fn start(config: &CaptureConfig) -> Result<Self, CaptureError> {
        if !(1..=2).contains(&config.channels) {
            return Err(CaptureError::Channels(config.channels));
        }
        let host = cpal::default_host();
        let device = match &config.device {
            Some(wanted) => host
                .input_devices()
                .map_err(|source| CaptureError::Device {
                    device: wanted.clone(),
                    what: "listing devices",
                    source,
                })?
                .find(|d| d.id().is_ok_and(|id| id.to_string() == *wanted))
                .ok_or_else(|| CaptureError::NoSuchDevice(wanted.clone()))?,
            None => host
                .default_input_device()
                .ok_or(CaptureError::NoDefaultDevice)?,
        };
        let device_name = device
            .id()
            .map_or_else(|_| "unknown".to_string(), |id| id.to_string());
        let stream_config = cpal::StreamConfig {
            channels: config.channels,
            sample_rate: config.sample_rate_hz,
            buffer_size: cpal::BufferSize::Default,
        };
        let chunk_samples = config.chunk_frames.max(1) * usize::from(config.channels);
        let (chunk_tx, chunks) = mpsc::sync_channel::<Vec<f32>>(POOL_BUFFERS);
        let (pool, pool_rx) = mpsc::sync_channel::<Vec<f32>>(POOL_BUFFERS);
        for _ in 0..POOL_BUFFERS {
            // The pool is sized to hold every buffer: this cannot fail.
            let _ = pool.try_send(Vec::with_capacity(chunk_samples));
        }
        let stats = Arc::new(CaptureStats::default());
        let callback_stats = stats.clone();
        let error_stats = stats.clone();
        let mut filling: Option<Vec<f32>> = None;
        let lossless = config.lossless;
        let data_callback = move |data: &[i16], _: &cpal::InputCallbackInfo| {
            for &sample in data {
                if filling.is_none() {
                    filling = if lossless {
                        pool_rx.recv().ok()
                    } else {
                        pool_rx.try_recv().ok()
                    };
                }
                let Some(buffer) = filling.as_mut() else {
                    callback_stats
                        .dropped_samples
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                buffer.push(f32::from(sample) / 32768.0);
                if buffer.len() == chunk_samples
                    && let Some(full) = filling.take()
                {
                    callback_stats
                        .delivered_samples
                        .fetch_add(full.len() as u64, Ordering::Relaxed);
                    // Never blocks: the chunk channel holds every pool buffer. It fails only
                    // when the consumer is gone.
                    let _ = chunk_tx.try_send(full);
                }
            }
        };
        let error_callback = move |_err: cpal::Error| {
            error_stats.stream_errors.fetch_add(1, Ordering::Relaxed);
        };
        let stream = device
            .build_input_stream::<i16, _, _>(stream_config, data_callback, error_callback, None)
            .map_err(|source| CaptureError::Device {
                device: device_name.clone(),
                what: "opening the input stream",
                source,
            })?;
        stream.play().map_err(|source| CaptureError::Device {
            device: device_name.clone(),
            what: "starting the input stream",
            source,
        })?;
        Ok(Self {
            _stream: stream,
            chunks,
            pool,
            stats,
            device_name,
        })
    }

    /// Waits for the next chunk (interleaved `f32`); None when the stream stopped.
    pub fn next_chunk(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Vec<f32>, mpsc::RecvTimeoutError> {
        self.chunks.recv_timeout(timeout)
    }

    /// Returns a consumed chunk's buffer to the pool.
    pub fn recycle(&self, mut buffer: Vec<f32>) {
        buffer.clear();
        let _ = self.pool.try_send(buffer);
    }
}

/// Ids of the input devices cpal sees.
pub fn list_input_devices() -> Vec<String> {
    let host = cpal::default_host();
    host.input_devices()
        .map(|devices| {
            devices
                .filter_map(|d| d.id().ok().map(|id| id.to_string()))
                .collect()
        })
        .unwrap_or_default()
}
