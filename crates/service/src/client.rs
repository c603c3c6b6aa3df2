//! The client side of ingest: streams one call's audio chunks from any source (a recording
//! being replayed, a sound card) to a server, and hands every response (acks, events) to the
//! caller. The source is an `mpsc` channel of encoded chunks, so a capture thread can feed it
//! with `blocking_send` exactly as [`send_paced`] does for a recording.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::pb::{self, ingest_request::Msg, live_calls_client::LiveCallsClient};
use super::session::{Encoding, encode_chunk};

/// How a client reaches a server: its API token, and the CA that signed a private server's
/// certificate (`--ca`; the system's roots otherwise).
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Sent as `authorization: Bearer TOKEN` on every call.
    pub token: Option<String>,
    /// PEM of the CA to trust for `https://` servers instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A connected client.
pub type Client = LiveCallsClient<InterceptedService<Channel, Bearer>>;

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("the API token has characters a header cannot carry")]
    BadToken,
    #[error("{0}")]
    Url(String),
}

/// Connects to a server: `http://host:port` (plaintext) or `https://host:port` (TLS, the
/// server's certificate verified against `options.ca_pem` or the system's roots).
pub async fn connect(url: &str, options: &ClientOptions) -> Result<Client, ConnectError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?.tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &options.ca_pem {
            Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls)?;
    } else if !url.starts_with("http://") {
        return Err(ConnectError::Url(format!(
            "{url:?}: the server must be http://HOST:PORT or https://HOST:PORT"
        )));
    }
    let bearer = match &options.token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse::<MetadataValue<_>>()
                .map_err(|_| ConnectError::BadToken)?,
        ),
        None => None,
    };
    let channel = endpoint.connect().await?;
    Ok(LiveCallsClient::with_interceptor(channel, Bearer(bearer))
        .max_decoding_message_size(64 << 20))
}

/// Streams one call: the header, every chunk the source yields (until it closes), then the
/// end of the call. `on_response` sees every ack and event with the time it arrived. Returns
/// the stream's final status (Ok when the server ended it normally).
pub async fn ingest_call(
    client: &mut Client,
    header: pb::CallHeader,
    chunks: mpsc::Receiver<pb::AudioChunk>,
    mut on_response: impl FnMut(pb::IngestResponse, Instant),
) -> Result<(), Status> {
    let first = tokio_stream::once(pb::IngestRequest {
        msg: Some(Msg::Header(header)),
    });
    let audio = ReceiverStream::new(chunks).map(|chunk| pb::IngestRequest {
        msg: Some(Msg::Audio(chunk)),
    });
    let last = tokio_stream::once(pb::IngestRequest {
        msg: Some(Msg::End(pb::EndCall {})),
    });
    let mut responses = client
        .ingest(first.chain(audio).chain(last))
        .await?
        .into_inner();
    while let Some(response) = responses.message().await? {
        on_response(response, Instant::now());
    }
    Ok(())
}

/// A recording cut into encoded chunks, ready to stream (shared by many simulated calls).
#[derive(Debug, Clone)]
pub struct ChunkedAudio {
    pub chunks: Arc<Vec<Bytes>>,
    pub sample_rate_hz: u32,
    pub frames_per_chunk: usize,
    pub encoding: Encoding,
}

impl ChunkedAudio {
    /// Encodes two channels as interleaved stereo chunks of `frames_per_chunk` frames.
    pub fn interleaved(
        channels: [&[f32]; 2],
        sample_rate_hz: u32,
        frames_per_chunk: usize,
        encoding: Encoding,
    ) -> Self {
        let frames = channels[0].len().min(channels[1].len());
        let frames_per_chunk = frames_per_chunk.max(1);
        let mut chunks = Vec::with_capacity(frames.div_ceil(frames_per_chunk));
        let mut start = 0;
        while start < frames {
            let end = (start + frames_per_chunk).min(frames);
            let mut bytes = Vec::with_capacity((end - start) * 2 * encoding.bytes_per_sample());
            encode_chunk(
                encoding,
                &[&channels[0][start..end], &channels[1][start..end]],
                &mut bytes,
            );
            chunks.push(Bytes::from(bytes));
            start = end;
        }
        Self {
            chunks: Arc::new(chunks),
            sample_rate_hz,
            frames_per_chunk,
            encoding,
        }
    }

    /// Call time of one chunk, seconds.
    pub fn chunk_s(&self) -> f64 {
        self.frames_per_chunk as f64 / f64::from(self.sample_rate_hz)
    }

    /// The chunk whose audio contains call time `t_s` (the last chunk for times past the end).
    pub fn chunk_containing(&self, t_s: f64) -> usize {
        let index = (t_s / self.chunk_s() - 1e-9).ceil() as i64 - 1;
        index.clamp(0, self.chunks.len() as i64 - 1) as usize
    }
}

/// How a paced sender kept to its schedule.
#[derive(Debug, Clone, Default)]
pub struct PacingReport {
    /// When each chunk was handed to the stream, by sequence number.
    pub sent_at: Vec<Instant>,
    /// How late each chunk was handed over against its schedule.
    pub lag: Vec<Duration>,
}

/// Feeds `audio`'s chunks into `tx` at `speed` times real time (chunk k at `start + k ·
/// chunk_s / speed`; `f64::INFINITY`: as fast as the stream takes them), recording when each
/// was handed over. The hand-over waits when the stream cannot take more (the server not
/// keeping up shows as lag). Stops early if the stream closed.
pub async fn send_paced(
    audio: &ChunkedAudio,
    speed: f64,
    start: tokio::time::Instant,
    tx: mpsc::Sender<pb::AudioChunk>,
) -> PacingReport {
    let period = Duration::from_secs_f64(audio.chunk_s() / speed.max(1e-6));
    let mut report = PacingReport {
        sent_at: Vec::with_capacity(audio.chunks.len()),
        lag: Vec::with_capacity(audio.chunks.len()),
    };
    for (seq, bytes) in audio.chunks.iter().enumerate() {
        let due = start + period * seq as u32;
        if !period.is_zero() {
            tokio::time::sleep_until(due).await;
        }
        let chunk = pb::AudioChunk {
            seq: seq as u64,
            channel: 0,
            audio: bytes.clone(),
        };
        if tx.send(chunk).await.is_err() {
            break;
        }
        let now = tokio::time::Instant::now();
        report.sent_at.push(now.into_std());
        report.lag.push(now.saturating_duration_since(due));
    }
    report
}
