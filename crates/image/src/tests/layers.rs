//! Tests of layer ingestion: round trips, every kind of bad input leaving
//! nothing behind, concurrency, and recovery from a killed writer.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use pelagos_layer::Compression;

use super::support::*;
use crate::digest::{Digest, VerifyError};
use crate::error::StoreError;
use crate::images::{chain_id, ImageStore};
use crate::layers::LayerClaim;
use crate::oci::media;

fn ingest(
    store: &ImageStore,
    l: &BuiltLayer,
    parent: Option<&Digest>,
) -> Result<crate::LayerInfo, StoreError> {
    store.ingest_layer(&l.blob[..], &l.desc, &l.diff_id, parent, &mut |_| {})
}

#[test]
fn ingest_round_trip_with_every_compression() {
    let f = fixture();
    let s = &f.store;
    let entries: &[(&str, &[u8])] = &[
        ("etc/", b""),
        ("etc/hostname", b"pelagos\n"),
        ("bin/tool", b"#!/bin/sh\necho hi\n"),
    ];
    for (compression, declared) in [
        (Compression::None, Some(media::OCI_LAYER)),
        (Compression::Gzip, Some(media::DOCKER_LAYER_GZIP)),
        (Compression::Zstd, Some(media::OCI_LAYER_ZSTD)),
        // Unknown media types are detected from the magic bytes.
        (Compression::Gzip, Some("application/octet-stream")),
        (Compression::Zstd, Some("")),
    ] {
        let mut l = layer(entries, compression);
        if let Some(mt) = declared {
            l.desc.media_type = mt.to_owned();
        }
        // Every form is a different blob of the same diff; start afresh.
        let f = fixture();
        let s2 = &f.store;
        let mut seen = Vec::new();
        let info = s2
            .ingest_layer(&l.blob[..], &l.desc, &l.diff_id, None, &mut |n| {
                seen.push(n)
            })
            .unwrap();
        assert_eq!(
            info.chain_id, l.diff_id,
            "a base layer's chain id is its diff_id"
        );
        assert_eq!(info.diff_id, l.diff_id);
        assert_eq!(info.parent, None);
        assert_eq!(info.blob.as_ref(), Some(&l.desc));
        assert_eq!(info.size, 8 + 18);
        assert_eq!(seen.last(), Some(&l.desc.size), "{compression:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress grows");
        // The blob holds the exact bytes.
        assert_eq!(
            fs::read(s2.blobs().blob_path(&l.desc.digest)).unwrap(),
            l.blob
        );
        let dir = s2.layer_dir(&info.chain_id);
        assert_eq!(
            fs::read(dir.join("diff/etc/hostname")).unwrap(),
            b"pelagos\n"
        );
        assert_eq!(s2.layer(&info.chain_id).unwrap(), Some(info.clone()));
        let link = s2.layers_dir().join("l").join(&info.short_id);
        assert_eq!(info.short_id.len(), crate::layers::SHORT_ID_LEN);
        assert_eq!(
            fs::read(link.join("bin/tool")).unwrap(),
            b"#!/bin/sh\necho hi\n",
            "the l/ link resolves to the layer's diff/"
        );
        assert_eq!(names(&s2.root().join("tmp")), Vec::<String>::new());
    }
    // Unused outer fixture stays empty.
    assert_empty(s);
}

#[test]
fn layers_stack_with_chain_ids_and_whiteouts() {
    let f = fixture();
    let s = &f.store;
    let base = layer(
        &[("etc/", b""), ("etc/a", b"a"), ("etc/b", b"b")],
        Compression::Gzip,
    );
    let top = layer(&[("etc/", b""), ("etc/.wh.a", b"")], Compression::Gzip);
    let b = ingest(s, &base, None).unwrap();
    let t = ingest(s, &top, Some(&b.chain_id)).unwrap();
    assert_eq!(t.chain_id, chain_id(Some(&b.chain_id), &top.diff_id));
    assert_eq!(t.parent.as_ref(), Some(&b.chain_id));
    assert_ne!(t.short_id, b.short_id);
    let wh = fs::symlink_metadata(s.layer_dir(&t.chain_id).join("diff/etc/a")).unwrap();
    assert!(wh.file_type().is_char_device(), "overlayfs whiteout");
}

#[test]
fn layers_may_be_committed_out_of_order() {
    // Parallel downloads: the top layer finishes before its parent.
    let f = fixture();
    let s = &f.store;
    let img = image(
        vec![
            layer(&[("bottom", b"1")], Compression::Gzip),
            layer(&[("top", b"2")], Compression::Gzip),
        ],
        "ooo",
    );
    let chains = crate::chain_ids(&[img.layers[0].diff_id.clone(), img.layers[1].diff_id.clone()]);
    s.blobs()
        .put_bytes(&img.manifest_digest, &img.manifest)
        .unwrap();
    s.blobs()
        .put_bytes(&img.config_digest, &img.config)
        .unwrap();
    let top = ingest(s, &img.layers[1], Some(&chains[0])).unwrap();
    assert_eq!(top.chain_id, chains[1]);
    // Not a complete image yet (the bottom blob is there, its layer is not).
    s.blobs()
        .put_bytes(&img.layers[0].desc.digest, &img.layers[0].blob)
        .unwrap();
    let err = s.put_image(new_image(&img, None, None)).unwrap_err();
    assert!(matches!(err, StoreError::LayerMissing { .. }), "{err}");
    assert!(err.to_string().contains(&chains[0].to_string()), "{err}");
    ingest(s, &img.layers[0], None).unwrap();
    let rec = s.put_image(new_image(&img, Some("ooo"), None)).unwrap();
    assert_eq!(rec.chain_ids, chains);
}

#[test]
fn bad_digest_size_or_diff_id_commit_nothing() {
    let f = fixture();
    let s = &f.store;
    let good = layer(&[("etc/", b""), ("etc/f", b"content")], Compression::Gzip);

    let mut wrong_digest = good.clone();
    wrong_digest.desc.digest = sha(b"something else");
    let err = ingest(s, &wrong_digest, None).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::DigestMismatch { .. })),
        "{err}"
    );
    assert_empty(s);

    for size in [good.desc.size - 1, good.desc.size + 1, 0] {
        let mut wrong_size = good.clone();
        wrong_size.desc.size = size;
        let err = ingest(s, &wrong_size, None).unwrap_err();
        assert!(
            matches!(err, StoreError::Verify(VerifyError::SizeMismatch { .. })),
            "size {size}: {err}"
        );
        assert_empty(s);
    }

    let wrong_diff = sha(b"not the diff");
    let err = s
        .ingest_layer(&good.blob[..], &good.desc, &wrong_diff, None, &mut |_| {})
        .unwrap_err();
    match &err {
        StoreError::DiffIdMismatch {
            blob,
            expected,
            actual,
        } => {
            assert_eq!(blob, &good.desc.digest);
            assert_eq!(expected, &wrong_diff);
            assert_eq!(actual, &good.diff_id);
        }
        other => panic!("unexpected {other}"),
    }
    assert_empty(s);

    // A correctly digested blob that is not a tar: the unpacker's error.
    let garbage = gzip(b"this is not a tar archive, just text that goes on and on.....");
    let mut desc = good.desc.clone();
    desc.digest = sha(&garbage);
    desc.size = garbage.len() as u64;
    let err = s
        .ingest_layer(&garbage[..], &desc, &good.diff_id, None, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unpack { .. } | StoreError::DiffIdMismatch { .. }
        ),
        "{err}"
    );
    assert_empty(s);

    // Nothing half-done got in the way of a good ingest afterwards.
    ingest(s, &good, None).unwrap();
}

#[test]
fn truncated_and_failing_streams_commit_nothing() {
    let f = fixture();
    let s = &f.store;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let l = layer(&[("big", &big)], Compression::Gzip);
    let half = &l.blob[..l.blob.len() / 2];
    let err = s
        .ingest_layer(half, &l.desc, &l.diff_id, None, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::SizeMismatch { .. })),
        "truncated: {err}"
    );
    assert!(
        err.to_string().contains(&l.desc.digest.to_string()),
        "{err}"
    );
    assert_empty(s);

    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "registry hung up",
                ));
            }
            let n = self.0.len().min(buf.len()).min(4096);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let err = s
        .ingest_layer(Failing(half), &l.desc, &l.diff_id, None, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert!(err.to_string().contains("registry hung up"), "{err}");
    assert_empty(s);
}

#[test]
fn non_layer_media_type_is_refused() {
    let f = fixture();
    let mut l = layer(&[("x", b"x")], Compression::Gzip);
    l.desc.media_type = media::OCI_MANIFEST.to_owned();
    let err = ingest(&f.store, &l, None).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(media::OCI_MANIFEST), "{err}");
    assert_empty(&f.store);
}

#[test]
fn concurrent_ingest_of_one_layer_all_succeed() {
    let f = fixture();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("d/f{i}"), content[..7000 * (i + 1)].to_vec()))
        .collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let l = Arc::new(layer(&entries, Compression::Gzip));
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let root = f.store.root().to_path_buf();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (l, barrier, root) = (l.clone(), barrier.clone(), root.clone());
            std::thread::spawn(move || {
                // Each its own store handle, as separate processes would have.
                let s = ImageStore::open(&root).unwrap();
                barrier.wait();
                ingest(&s, &l, None)
            })
        })
        .collect();
    let infos: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    for info in &infos {
        assert_eq!(info, &infos[0]);
    }
    let s = &f.store;
    assert_eq!(
        names(&s.root().join("layers/sha256")),
        vec![l.diff_id.hex()]
    );
    assert_eq!(
        names(&s.root().join("layers/l")),
        vec![infos[0].short_id.clone()]
    );
    assert_eq!(names(&s.root().join("tmp")), Vec::<String>::new());
    let diff = s.layer_dir(&infos[0].chain_id).join("diff/d");
    assert_eq!(fs::read(diff.join("f39")).unwrap(), files[39].1);
    assert_eq!(names(&diff).len(), 40);
}

#[test]
fn concurrent_claims_of_one_layer_ingest_it_once() {
    let f = fixture();
    let l = Arc::new(layer(&[("f", &[5u8; 50_000][..])], Compression::Gzip));
    let ingests = Arc::new(AtomicU32::new(0));
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let root = f.store.root().to_path_buf();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (l, barrier, root, ingests) =
                (l.clone(), barrier.clone(), root.clone(), ingests.clone());
            std::thread::spawn(move || {
                let s = ImageStore::open(&root).unwrap();
                barrier.wait();
                match s.claim_layer(&l.desc, &l.diff_id, None).unwrap() {
                    LayerClaim::Present(info) => info,
                    LayerClaim::Missing(ingest) => {
                        ingests.fetch_add(1, Ordering::SeqCst);
                        ingest.ingest(&l.blob[..], &mut |_| {}).unwrap()
                    }
                }
            })
        })
        .collect();
    let infos: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        ingests.load(Ordering::SeqCst),
        1,
        "the layer was fetched twice"
    );
    assert!(infos.iter().all(|i| i == &infos[0]));
    assert_eq!(names(&root.join("locks")), Vec::<String>::new());
    assert_eq!(names(&root.join("tmp")), Vec::<String>::new());
}

#[test]
fn a_stored_blob_on_a_new_parent_is_read_from_the_store() {
    let f = fixture();
    let s = &f.store;
    let base = layer(&[("base", b"1")], Compression::Gzip);
    let top = layer(&[("top", b"2")], Compression::Gzip);
    ingest(s, &top, None).unwrap();
    let parent = ingest(s, &base, None).unwrap().chain_id;
    // The same blob on top of another layer: a new layer, the blob is at hand.
    let LayerClaim::Missing(claim) = s
        .claim_layer(&top.desc, &top.diff_id, Some(&parent))
        .unwrap()
    else {
        panic!("the layer on a new parent is present");
    };
    assert!(claim.blob_stored());
    let stored = s
        .blobs()
        .open(&top.desc.digest, Some(top.desc.size))
        .unwrap();
    let info = claim.ingest(stored, &mut |_| {}).unwrap();
    assert_eq!(info.chain_id, chain_id(Some(&parent), &top.diff_id));
    assert!(matches!(
        s.claim_layer(&top.desc, &top.diff_id, Some(&parent))
            .unwrap(),
        LayerClaim::Present(_)
    ));
    // A claim given up (a cancelled pull) leaves the next one free to ingest.
    let other = layer(&[("other", b"3")], Compression::Gzip);
    let LayerClaim::Missing(given_up) = s.claim_layer(&other.desc, &other.diff_id, None).unwrap()
    else {
        panic!("a new layer is present");
    };
    assert!(!given_up.blob_stored());
    drop(given_up);
    ingest(s, &other, None).unwrap();
    assert_eq!(names(&s.root().join("locks")), Vec::<String>::new());
}

#[test]
fn committed_layer_is_reused_and_its_blob_restored() {
    let f = fixture();
    let s = &f.store;
    let l = layer(&[("f", b"one")], Compression::Gzip);
    let first = ingest(s, &l, None).unwrap();
    let marker = s.layer_dir(&first.chain_id).join("diff/extra");
    fs::write(&marker, b"not unpacked again").unwrap();
    s.blobs().remove(&l.desc.digest).unwrap();
    // The same diff in another compression: same layer, its own blob.
    let mut other = layer(&[("f", b"one")], Compression::Zstd);
    other.desc.media_type = media::OCI_LAYER_ZSTD.to_owned();
    assert_eq!(other.diff_id, l.diff_id);
    let again = ingest(s, &l, None).unwrap();
    let zst = ingest(s, &other, None).unwrap();
    assert_eq!(again, first);
    assert_eq!(zst, first, "the first writer's layer is kept");
    assert!(marker.exists(), "an existing layer is not unpacked again");
    assert!(s.blobs().has(&l.desc.digest));
    assert!(s.blobs().has(&other.desc.digest));
    // Still verified: a wrong diff_id for a known layer is refused.
    let err = s
        .ingest_layer(&l.blob[..], &l.desc, &sha(b"x"), None, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::DiffIdMismatch { .. }), "{err}");
}

/// A pid that no longer exists.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn killed_writer_leaves_only_garbage_that_is_collected() {
    let f = fixture();
    let root = f.store.root().to_path_buf();
    // What a writer killed mid-ingest leaves: a half-unpacked layer and a
    // partial blob in tmp/, and the layer link made just before its commit.
    let dead = dead_pid();
    let half = root.join(format!("tmp/{dead}-1-0.layer"));
    fs::create_dir_all(half.join("diff/usr/lib")).unwrap();
    fs::write(half.join("diff/usr/lib/big"), vec![7u8; 100_000]).unwrap();
    fs::write(root.join(format!("tmp/{dead}-1-1.tmp")), b"partial blob").unwrap();
    let chain = sha(b"never committed");
    std::os::unix::fs::symlink(
        format!("../sha256/{}/diff", chain.hex()),
        root.join("layers/l/abcdefghijkl"),
    )
    .unwrap();
    // Nothing of it is visible.
    assert_eq!(f.store.layer(&chain).unwrap(), None);
    assert_eq!(f.store.list().unwrap(), vec![]);
    assert_eq!(f.store.blobs().list().unwrap(), vec![]);

    let report = f.store.prune(false, &|_| false).unwrap();
    assert!(report.deleted.is_empty());
    assert!(report.reclaimed >= 100_000, "{report:?}");
    assert_empty(&f.store);

    // Reopening (a new pull) also clears a dead writer's leftovers.
    fs::write(root.join(format!("tmp/{dead}-2-0.tmp")), b"partial").unwrap();
    let live = root.join(format!("tmp/{}-2-0.tmp", std::process::id()));
    fs::write(&live, b"in flight").unwrap();
    ImageStore::open(&root).unwrap();
    assert_eq!(
        names(&root.join("tmp")),
        vec![live.file_name().unwrap().to_string_lossy().into_owned()]
    );
    fs::remove_file(&live).unwrap();
}

#[test]
fn short_ids_are_stable_and_collisions_move_on() {
    let f = fixture();
    let s = &f.store;
    let l = layer(&[("f", b"1")], Compression::Gzip);
    // Someone else's link already holds the first candidate name.
    let first = crate::layers::short_id(&l.diff_id, 0);
    std::os::unix::fs::symlink(
        "../sha256/elsewhere/diff",
        s.layers_dir().join("l").join(&first),
    )
    .unwrap();
    let info = ingest(s, &l, None).unwrap();
    assert_ne!(info.short_id, first);
    assert_eq!(info.short_id, crate::layers::short_id(&l.diff_id, 1));
    assert!(Path::new(&s.layers_dir().join("l").join(&info.short_id)).exists());
}

/// Set in the child process of `kill_9_mid_ingest_leaves_only_tmp_garbage`.
const CHILD_STORE_ENV: &str = "PELAGOS_IMAGE_TEST_CHILD_STORE";

/// The blob the killed child ingests: big enough to take a while when read slowly.
fn slow_layer() -> BuiltLayer {
    let files: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| {
            let data: Vec<u8> = (0..16_384u32).map(|j| ((i * 7 + j) % 251) as u8).collect();
            (format!("data/f{i:02}"), data)
        })
        .collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    layer(&entries, Compression::None)
}

/// Not a test of its own: the child side of the kill -9 test (a no-op
/// unless that test started this process).
#[test]
fn kill_9_child_helper() {
    let Ok(root) = std::env::var(CHILD_STORE_ENV) else {
        return;
    };
    struct Slow<'a>(&'a [u8]);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let n = self.0.len().min(buf.len()).min(8192);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let s = ImageStore::open(&root).unwrap();
    let l = slow_layer();
    s.ingest_layer(Slow(&l.blob), &l.desc, &l.diff_id, None, &mut |_| {})
        .unwrap();
    panic!("the parent should have killed this process before the ingest finished");
}

/// Kills the child on drop if the test fails early.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_9_mid_ingest_leaves_only_tmp_garbage() {
    let f = fixture();
    let root = f.store.root().to_path_buf();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::layers::kill_9_child_helper",
            "--nocapture",
        ])
        .env(CHILD_STORE_ENV, &root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    // Wait until the child is unpacking: files appear in its temporary layer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let unpacking = names(&root.join("tmp")).iter().any(|n| {
            n.ends_with(".layer") && names(&root.join("tmp").join(n).join("diff/data")).len() > 3
        });
        if unpacking {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never started unpacking"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();

    // Only tmp/ and the killed writer's unheld lock files hold anything; nothing is visible.
    assert!(!names(&root.join("locks")).is_empty());
    let l = slow_layer();
    assert_eq!(f.store.layer(&l.diff_id).unwrap(), None);
    assert_eq!(f.store.blobs().list().unwrap(), vec![]);
    assert_eq!(names(&root.join("layers/sha256")), Vec::<String>::new());
    assert!(!names(&root.join("tmp")).is_empty());
    // The next open (a new pull) clears it, and the layer can be ingested.
    let s = ImageStore::open(&root).unwrap();
    assert_eq!(names(&root.join("tmp")), Vec::<String>::new());
    ingest(&s, &l, None).unwrap();
    s.prune(true, &|_| false).unwrap();
    assert_empty(&s);
}
