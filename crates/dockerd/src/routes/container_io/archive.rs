//! `HEAD|GET|PUT /containers/{id}/archive`, what `docker cp` uses: a path's stat in the
//! `X-Docker-Container-Path-Stat` header, its tar stream, and a tar body extracted as it
//! arrives (never held whole in memory).

use std::io::{self, Read, Write};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use pelagos_engine::container::cp::{self, PathStat};
use pelagos_engine::container::fsroot::{self, View};
use pelagos_engine::container::tar_in::{ExtractOptions, Owners};
use pelagos_model::record::ContainerRecord;
use tokio::sync::{mpsc, oneshot};

use super::{channel_body, gone, CHANNEL_DEPTH};
use crate::error::{ApiError, ApiResult};
use crate::query::{bool_value, Params};
use crate::state::AppState;

/// The size of the chunks a tar stream is sent in.
const CHUNK: usize = 64 * 1024;

/// The `path` parameter, which every archive request needs.
fn path_of(q: &Params) -> ApiResult<String> {
    match q.get("path").map(String::as_str) {
        None | Some("") => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
        Some(p) => Ok(p.to_owned()),
    }
}

/// Go's `os.FileMode` of a `st_mode`: the permissions, then Go's own bits for the type and
/// setuid/setgid/sticky (the docker CLI asks `IsDir()` of it).
fn go_file_mode(mode: u32) -> u32 {
    let mut go = mode & 0o777;
    for (bit, go_bit) in [
        (libc::S_ISUID, 1 << 23),
        (libc::S_ISGID, 1 << 22),
        (libc::S_ISVTX, 1 << 20),
    ] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go | match mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    }
}

/// `X-Docker-Container-Path-Stat`: the stat as base64 JSON.
fn stat_header(stat: &PathStat) -> ApiResult<HeaderMap> {
    let json = serde_json::json!({
        "name": stat.name,
        "size": stat.size,
        "mode": go_file_mode(stat.mode),
        "mtime": humantime::format_rfc3339_nanos(stat.mtime).to_string(),
        "linkTarget": stat.link_target,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    let value = HeaderValue::from_str(&encoded)
        .map_err(|e| ApiError::internal(format!("encode the path's stat: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert("X-Docker-Container-Path-Stat", value);
    Ok(headers)
}

/// `HEAD /containers/{id}/archive`.
pub async fn head_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<HeaderMap> {
    let path = path_of(&q)?;
    let stat = state
        .blocking(move |e| {
            let fs = fsroot::open(e, &id, View::Live)?;
            cp::stat(&fs, &path, false)
        })
        .await?;
    stat_header(&stat)
}

/// `GET /containers/{id}/archive`: the stat header, then the tar stream as it is made.
pub async fn get_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let (stat_tx, stat_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let engine = state.engine.clone();
    std::thread::Builder::new()
        .name("archive-out".into())
        .spawn(move || {
            // Opened and archived on one thread: a stopped container's root is mounted for
            // as long as `fs` lives.
            let opened = fsroot::open(&engine, &id, View::Live)
                .and_then(|fs| cp::stat(&fs, &path, false).map(|st| (fs, st)));
            let fs = match opened {
                Ok((fs, st)) => {
                    let _ = stat_tx.send(Ok(st));
                    fs
                }
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                    return;
                }
            };
            let mut out = ChannelWriter::new(tx.clone());
            let done = cp::archive(&fs, &path, false, &mut out).map(|_| ());
            let done = done.map_err(|e| io::Error::other(e.to_string()));
            if let Err(e) = done.and_then(|()| out.flush()) {
                // A cut stream must not look like a complete archive.
                let _ = tx.blocking_send(Err(e));
            }
        })
        .map_err(|e| ApiError::internal(format!("start the archiver: {e}")))?;
    let stat = stat_rx
        .await
        .map_err(|_| ApiError::internal("the archiver ended early"))??;
    let mut headers = stat_header(&stat)?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok((headers, channel_body(rx, ())).into_response())
}

/// A `Write` sending `CHUNK`-sized pieces down a channel (blocking while it is full); an
/// error once the receiver is gone.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| gone())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// `PUT /containers/{id}/archive`: the body, a tar stream, extracted under `path` (a
/// directory) as it arrives.
pub async fn put_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    body: Body,
) -> ApiResult<()> {
    let path = path_of(&q)?;
    // The docker CLI always asks not to replace a directory by a file or the reverse;
    // docker-py's put_archive does not ask.
    let no_overwrite = bool_value(q.get("noOverwriteDirNonDir").map(String::as_str));
    let owners = match bool_value(q.get("copyUIDGID").map(String::as_str)) {
        true => Owners::Keep,
        // As Docker's daemon: the files become the container's root's.
        false => Owners::All { uid: 0, gid: 0 },
    };
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let extraction = state.blocking(move |e| -> ApiResult<u64> {
        let record = pelagos_engine::container::lookup(e, &id)?;
        let fs = fsroot::open(e, record.id.as_str(), View::Live)?;
        // As moby: a missing destination first, then where writes are refused.
        cp::stat(&fs, &path, true)?;
        writable(&record, &path)?;
        let opts = ExtractOptions {
            owners,
            rebase: None,
            replace_dir_non_dir: !no_overwrite,
        };
        Ok(cp::extract_to(&fs, &path, ChannelReader::new(rx), &opts)?)
    });
    let pump = pump(body, tx);
    let (extracted, ()) = tokio::join!(extraction, pump);
    extracted.map(|_| ())
}

/// moby's refusals of a copy into `path`: a read-only mount holding it, or a read-only root
/// filesystem when no mount holds it.
fn writable(record: &ContainerRecord, path: &str) -> ApiResult<()> {
    let path = fsroot::clean(&format!("/{path}"));
    let under = |dest: &str| {
        let dest = fsroot::clean(dest);
        path == dest || dest == "/" || path.starts_with(&format!("{dest}/"))
    };
    match record.mounts.iter().find(|m| under(&m.destination)) {
        Some(m) if !m.rw => Err(ApiError::bad_request("mounted volume is marked read-only")),
        Some(_) => Ok(()),
        None if record.host_config.readonly_rootfs => Err(ApiError::bad_request(
            "container rootfs is marked read-only",
        )),
        None => Ok(()),
    }
}

/// Feeds the body's chunks to the extraction until the body ends or the extraction stops
/// reading (done, or failed: its error is the answer); then the body is let go, and
/// [`crate::drain`] reads its rest before the answer, so the client, still sending, reads
/// the answer rather than a reset connection.
async fn pump(body: Body, tx: mpsc::Sender<io::Result<Bytes>>) {
    let mut chunks = body.into_data_stream();
    loop {
        let chunk = tokio::select! {
            chunk = chunks.next() => chunk,
            () = tx.closed() => return,
        };
        let Some(chunk) = chunk else { return };
        let item = chunk.map_err(|e| io::Error::other(format!("read the request body: {e}")));
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// A blocking `Read` over the chunks of a request body.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChannelReader {
        ChannelReader {
            rx,
            chunk: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(item) => self.chunk = item?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_as_go_writes_them() {
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFDIR | libc::S_ISVTX | 0o777),
            (1 << 31) | (1 << 20) | 0o777
        );
    }

    #[test]
    fn read_only_roots_and_mounts_refuse_copies() {
        let id = pelagos_model::names::new_container_id().expect("an id");
        let mut record = ContainerRecord::new(id, "box");
        record.host_config.readonly_rootfs = true;
        record.mounts.push(pelagos_model::record::MountPoint {
            destination: "/data".into(),
            rw: true,
            ..Default::default()
        });
        record.mounts.push(pelagos_model::record::MountPoint {
            destination: "/conf".into(),
            rw: false,
            ..Default::default()
        });
        let refusal = |path: &str| writable(&record, path).err().map(|e| e.message);
        assert_eq!(refusal("/data/x/"), None);
        assert_eq!(refusal("data"), None);
        assert_eq!(
            refusal("/conf/a").as_deref(),
            Some("mounted volume is marked read-only")
        );
        assert_eq!(
            refusal("/database").as_deref(),
            Some("container rootfs is marked read-only")
        );
    }

    #[test]
    fn the_reader_joins_the_chunks() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cde"))).unwrap();
        drop(tx);
        let mut text = String::new();
        ChannelReader::new(rx).read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcde");
    }
}
