//! A blocking, resuming blob reader ([`Client::blob_reader`]): streams a blob through
//! oci-client on a tokio runtime and, when the connection fails midway, continues with an
//! HTTP `Range` request from the byte offset reached, with exponential backoff.

use std::io;

use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use oci_client::client::BlobResponse;

use crate::client::{Client, ResolvedImage};
use crate::error::{from_oci, io_chain, Context, RegistryError};
use crate::manifest::BlobDescriptor;

impl Client {
    /// A blocking [`std::io::Read`] of a blob, for a worker thread (`spawn_blocking` or a std
    /// thread; never call its `read` from async code). It pulls from the endpoint that served
    /// the manifest and resumes with an HTTP `Range` request from the offset reached when the
    /// connection fails, with exponential backoff (see [`RetryPolicy`](crate::RetryPolicy)).
    /// It does not verify the digest (the caller hashes what it reads) but fails if the server
    /// sends more than `desc.size` bytes. `handle` must belong to a multi-thread runtime (or a
    /// current-thread runtime that another thread keeps driving).
    pub fn blob_reader(
        &self,
        handle: tokio::runtime::Handle,
        image: &ResolvedImage,
        desc: &BlobDescriptor,
    ) -> BlobReader {
        BlobReader::new(
            self.clone(),
            handle,
            image.endpoint.clone(),
            image.reference.repository.clone(),
            desc.clone(),
        )
    }
}

/// A blob as a blocking [`io::Read`]; see [`Client::blob_reader`].
///
/// Errors are `io::Error`s whose inner error is a [`RegistryError`]
/// (`err.get_ref().and_then(|e| e.downcast_ref::<RegistryError>())`), e.g.
/// [`RegistryError::TooManyRetries`] or [`RegistryError::SizeExceeded`]. After an error the
/// reader keeps returning it.
pub struct BlobReader {
    client: Client,
    handle: tokio::runtime::Handle,
    host: String,
    repository: String,
    desc: BlobDescriptor,
    /// Bytes received from the server so far (delivered or in `pending`).
    received: u64,
    pending: Bytes,
    stream: Option<BoxStream<'static, io::Result<Bytes>>>,
    /// Bytes still to drop from a response that ignored the `Range` header and started at 0.
    skip: u64,
    failures: u32,
    /// Requests sent, for diagnostics.
    requests: u32,
    finished: bool,
    fatal: Option<String>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("host", &self.host)
            .field("repository", &self.repository)
            .field("digest", &self.desc.digest.to_string())
            .field("received", &self.received)
            .field("size", &self.desc.size)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    fn new(
        client: Client,
        handle: tokio::runtime::Handle,
        host: String,
        repository: String,
        desc: BlobDescriptor,
    ) -> BlobReader {
        BlobReader {
            client,
            handle,
            host,
            repository,
            desc,
            received: 0,
            pending: Bytes::new(),
            stream: None,
            skip: 0,
            failures: 0,
            requests: 0,
            finished: false,
            fatal: None,
        }
    }

    /// Bytes received from the registry so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// HTTP requests made so far (1 when nothing had to be resumed).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The blob being read.
    pub fn descriptor(&self) -> &BlobDescriptor {
        &self.desc
    }

    fn what(&self) -> String {
        format!("blob {} from {}", self.desc.digest, self.host)
    }

    /// Opens a stream at `self.received`.
    async fn open(
        client: Client,
        host: String,
        repository: String,
        desc: BlobDescriptor,
        offset: u64,
    ) -> Result<(BoxStream<'static, io::Result<Bytes>>, bool), RegistryError> {
        let (repository, desc) = (repository.as_str(), &desc);
        client
            .on_endpoint(&host, |ep| async move {
                ep.prepare().await;
                let r = ep.oci_ref_digest(repository, &desc.digest);
                let digest = desc.digest.to_string();
                let what = format!("blob {digest} from {}", ep.host);
                let resp = ep
                    .oci
                    .pull_blob_stream_partial(&r, digest.as_str(), offset, None)
                    .await
                    .map_err(|e| {
                        from_oci(
                            e,
                            &Context {
                                host: &ep.host,
                                what: &what,
                            },
                        )
                    })?;
                Ok(match resp {
                    BlobResponse::Partial(s) => (s.stream, true),
                    BlobResponse::Full(s) => (s.stream, false),
                })
            })
            .await
    }

    /// Records a failed attempt: a fatal error ends the reader; a retryable one sleeps the
    /// backoff unless the budget is spent.
    fn fail(&mut self, e: RegistryError) -> io::Result<()> {
        self.stream = None;
        if !e.is_retryable() {
            return Err(self.fatal(e));
        }
        self.failures += 1;
        if self.failures >= self.client.retry_policy().max_attempts.max(1) {
            let err = RegistryError::TooManyRetries {
                host: self.host.clone(),
                digest: self.desc.digest.clone(),
                attempts: self.failures,
                last: Box::new(e),
            };
            return Err(self.fatal(err));
        }
        let delay = self.client.retry_policy().backoff(self.failures);
        tracing::warn!(
            blob = %self.desc.digest, host = %self.host, offset = self.received,
            attempt = self.failures, error = %e, "blob download interrupted, resuming in {delay:?}"
        );
        std::thread::sleep(delay);
        Ok(())
    }

    fn fatal(&mut self, e: RegistryError) -> io::Error {
        self.fatal = Some(e.to_string());
        io::Error::other(e)
    }
}

impl io::Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Ok(n);
            }
            if let Some(msg) = &self.fatal {
                return Err(io::Error::other(msg.clone()));
            }
            if self.finished || self.desc.size == 0 {
                // An empty blob needs no request (and `Range: bytes=0-` on it would be a 416).
                return Ok(0);
            }
            let Some(stream) = self.stream.as_mut() else {
                self.requests += 1;
                let fut = BlobReader::open(
                    self.client.clone(),
                    self.host.clone(),
                    self.repository.clone(),
                    self.desc.clone(),
                    self.received,
                );
                match self.handle.block_on(fut) {
                    Ok((stream, partial)) => {
                        self.skip = if partial { 0 } else { self.received };
                        self.stream = Some(stream);
                    }
                    Err(e) => self.fail(e)?,
                }
                continue;
            };
            match self.handle.block_on(stream.next()) {
                Some(Ok(mut bytes)) => {
                    if self.skip > 0 {
                        let k = usize::try_from(self.skip)
                            .unwrap_or(usize::MAX)
                            .min(bytes.len());
                        bytes.advance(k);
                        self.skip -= k as u64;
                    }
                    if bytes.is_empty() {
                        continue;
                    }
                    if self.received + bytes.len() as u64 > self.desc.size {
                        let e = RegistryError::SizeExceeded {
                            registry: self.host.clone(),
                            digest: self.desc.digest.clone(),
                            expected: self.desc.size,
                        };
                        self.stream = None;
                        return Err(self.fatal(e));
                    }
                    self.received += bytes.len() as u64;
                    self.failures = 0;
                    self.pending = bytes;
                }
                Some(Err(e)) => {
                    if self.received == self.desc.size {
                        // Everything arrived; what failed is at most oci-client's end-of-stream
                        // digest check (200 answers) or the connection's close. The caller
                        // verifies the digest itself.
                        self.finished = true;
                        self.stream = None;
                        continue;
                    }
                    let err = RegistryError::Transport {
                        host: self.host.clone(),
                        message: format!(
                            "{}: connection failed after {} of {} bytes: {}",
                            self.what(),
                            self.received,
                            self.desc.size,
                            io_chain(&e)
                        ),
                    };
                    self.fail(err)?;
                }
                None => {
                    self.stream = None;
                    if self.received == self.desc.size {
                        self.finished = true;
                        continue;
                    }
                    let err = RegistryError::Transport {
                        host: self.host.clone(),
                        message: format!(
                            "{}: the response ended after {} of {} bytes",
                            self.what(),
                            self.received,
                            self.desc.size
                        ),
                    };
                    self.fail(err)?;
                }
            }
        }
    }
}
