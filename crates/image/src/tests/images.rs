//! Tests of image records: lookup by every name form, tags, removal, pruning,
//! lower directories (mounted for real), locking between threads.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use pelagos_layer::Compression;

use super::support::*;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::images::{ImageStore, Removal};
use crate::reference::Reference;

const BUSYBOX: &str = "docker.io/library/busybox:latest";

#[test]
fn put_image_and_get_by_every_name_form() {
    let f = fixture();
    let s = &f.store;
    let img = image(
        vec![
            layer(&[("etc/", b""), ("etc/a", b"aaaa")], Compression::Gzip),
            layer(&[("etc/", b""), ("etc/b", b"bb")], Compression::Zstd),
        ],
        "first",
    );
    let repo_digest = format!("127.0.0.1:5000/busybox@{}", img.manifest_digest);
    let rec = put_with(s, &img, Some("busybox"), Some(repo_digest.clone()));
    assert_eq!(rec.id, img.config_digest);
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    assert_eq!(rec.repo_tags, vec![BUSYBOX.to_owned()]);
    assert_eq!(rec.repo_digests, vec![repo_digest.clone()]);
    assert_eq!(rec.size, 6);
    assert_eq!(rec.chain_ids, crate::chain_ids(&rec.diff_ids));
    assert_eq!(rec.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    let (os, arch, _) = crate::host_platform();
    assert_eq!((rec.os.as_str(), rec.architecture.as_str()), (os, arch));
    assert!(rec.added.ends_with('Z'), "{}", rec.added);

    let hex = rec.id.hex().to_owned();
    for name in [
        "busybox".to_owned(),
        "busybox:latest".to_owned(),
        BUSYBOX.to_owned(),
        "index.docker.io/library/busybox".to_owned(),
        repo_digest.clone(),
        rec.id.to_string(),
        hex.clone(),
        hex[..12].to_owned(),
        hex[..4].to_owned(),
        format!("sha256:{}", &hex[..8]),
    ] {
        assert_eq!(s.get(&name).unwrap(), rec, "{name}");
    }
    for missing in ["alpine", "busybox:1.36", &hex[..3], "0000000000"] {
        let err = s.get(missing).unwrap_err();
        assert!(
            matches!(err, StoreError::ImageNotFound(_)),
            "{missing}: {err}"
        );
        assert!(err.to_string().contains(missing), "{err}");
    }
    assert!(matches!(
        s.get("Not/A/Valid:Name!"),
        Err(StoreError::Reference(_))
    ));
    assert_eq!(s.list().unwrap(), vec![rec.clone()]);
    assert_eq!(s.config_bytes(&rec).unwrap(), img.config);
    let config = s.config(&rec).unwrap();
    assert_eq!(
        config.config().as_ref().unwrap().cmd().as_ref().unwrap()[2],
        "first"
    );
}

#[test]
fn id_prefixes_must_be_unambiguous() {
    let f = fixture();
    let s = &f.store;
    // Pigeonhole: among 17 ids two share their first hex digit.
    let mut by_first: std::collections::HashMap<char, Vec<Digest>> = Default::default();
    let mut pair = None;
    for i in 0..17 {
        let rec = put(s, &small_image(&format!("img{i}")), None);
        let c = rec.id.hex().chars().next().unwrap();
        let ids = by_first.entry(c).or_default();
        ids.push(rec.id);
        if ids.len() == 2 {
            pair = Some((c, ids.clone()));
            break;
        }
    }
    let (c, ids) = pair.unwrap();
    let err = s.get(&format!("sha256:{c}")).unwrap_err();
    assert!(
        matches!(err, StoreError::AmbiguousId { count: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ambiguous"), "{err}");
    // A longer prefix that separates them works.
    let common = ids[0]
        .hex()
        .chars()
        .zip(ids[1].hex().chars())
        .take_while(|(a, b)| a == b)
        .count();
    let unique = &ids[0].hex()[..(common + 1).max(4)];
    assert_eq!(s.get(unique).unwrap().id, ids[0]);
}

#[test]
fn put_image_verifies_and_is_idempotent() {
    let f = fixture();
    let s = &f.store;
    let img = small_image("x");
    let rec = put(s, &img, Some("app:1"));
    let again = s.put_image(new_image(&img, Some("app:2"), None)).unwrap();
    assert_eq!(again.added, rec.added, "the record is not rewritten");
    assert_eq!(
        again.repo_tags,
        vec!["docker.io/library/app:1", "docker.io/library/app:2"]
    );
    assert_eq!(s.list().unwrap().len(), 1);

    // Wrong diff_ids for the config.
    let mut bad = new_image(&img, None, None);
    bad.diff_ids = vec![sha(b"other")];
    let err = s.put_image(bad).unwrap_err();
    assert!(matches!(err, StoreError::InvalidImage { .. }), "{err}");
    assert!(err.to_string().contains("diff_ids"), "{err}");

    // A layer that is not committed.
    let other = small_image("y");
    s.blobs()
        .put_bytes(&other.manifest_digest, &other.manifest)
        .unwrap();
    s.blobs()
        .put_bytes(&other.config_digest, &other.config)
        .unwrap();
    s.blobs()
        .put_bytes(&other.layers[0].desc.digest, &other.layers[0].blob)
        .unwrap();
    let err = s.put_image(new_image(&other, None, None)).unwrap_err();
    assert!(matches!(err, StoreError::LayerMissing { .. }), "{err}");

    // A manifest that belongs to another config.
    let mut mixed = new_image(&img, None, None);
    mixed.manifest_digest = other.manifest_digest.clone();
    let err = s.put_image(mixed).unwrap_err();
    assert!(err.to_string().contains("names config"), "{err}");

    // A missing config blob.
    let third = small_image("z");
    s.blobs()
        .put_bytes(&third.manifest_digest, &third.manifest)
        .unwrap();
    let err = s.put_image(new_image(&third, None, None)).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref d) if *d == third.config_digest),
        "{err}"
    );
    assert_eq!(s.list().unwrap().len(), 1);
}

#[test]
fn tags_move_between_images() {
    let f = fixture();
    let s = &f.store;
    let a = put(s, &small_image("a"), Some("app:1"));
    let b = put(s, &small_image("b"), None);
    let tag = Reference::parse("app:1").unwrap();
    s.tag(&b.id, &tag).unwrap();
    assert_eq!(s.get("app:1").unwrap().id, b.id);
    assert_eq!(
        s.get(&a.id.to_string()).unwrap().repo_tags,
        Vec::<String>::new()
    );
    assert_eq!(
        s.get(&b.id.to_string()).unwrap().repo_tags,
        vec!["docker.io/library/app:1"]
    );
    s.tag(&a.id, &Reference::parse("localhost:5000/app:v2").unwrap())
        .unwrap();
    assert_eq!(s.get("localhost:5000/app:v2").unwrap().id, a.id);

    let digest_ref = Reference::parse(&format!("app@{}", a.manifest_digest)).unwrap();
    assert!(matches!(
        s.tag(&a.id, &digest_ref),
        Err(StoreError::InvalidTag { .. })
    ));
    let unknown = sha(b"unknown");
    assert!(matches!(
        s.tag(&unknown, &tag),
        Err(StoreError::ImageNotFound(_))
    ));
}

#[test]
fn concurrent_tagging_loses_no_update() {
    let f = fixture();
    let img = small_image("shared");
    put(&f.store, &img, None);
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (img, barrier) = (img.clone(), barrier.clone());
            let root = f.store.root().to_path_buf();
            std::thread::spawn(move || {
                let s = ImageStore::open(&root).unwrap();
                barrier.wait();
                for j in 0..5 {
                    let tag = format!("app:t{i}-{j}");
                    s.put_image(new_image(&img, Some(&tag), None)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let rec = f.store.get(&img.config_digest.to_string()).unwrap();
    assert_eq!(rec.repo_tags.len(), threads * 5);
}

fn layer_dirs(s: &ImageStore) -> Vec<String> {
    names(&s.root().join("layers/sha256"))
}

#[test]
fn remove_untags_deletes_and_respects_force_and_use() {
    let f = fixture();
    let s = &f.store;
    let none = |_: &Digest| false;

    // Two tags: removing one only untags.
    let a = put(s, &small_image("a"), Some("a:1"));
    s.tag(&a.id, &Reference::parse("a:2").unwrap()).unwrap();
    assert_eq!(
        s.remove("a:1", false, &none).unwrap(),
        vec![Removal::Untagged("docker.io/library/a:1".into())]
    );
    // The last tag by name: untag and delete, with the layer and blobs.
    assert_eq!(
        s.remove("a:2", false, &none).unwrap(),
        vec![
            Removal::Untagged("docker.io/library/a:2".into()),
            Removal::Deleted(a.id.clone())
        ]
    );
    assert!(matches!(
        s.get(&a.id.to_string()),
        Err(StoreError::ImageNotFound(_))
    ));
    assert_empty(s);

    // By id with several tags: refused without force.
    let b = put(s, &small_image("b"), Some("b:1"));
    s.tag(&b.id, &Reference::parse("b:2").unwrap()).unwrap();
    let err = s.remove(&b.id.to_string(), false, &none).unwrap_err();
    assert!(matches!(err, StoreError::MultipleTags { .. }), "{err}");
    assert!(err.to_string().contains("b:1"), "{err}");
    let removed = s.remove(&b.id.hex()[..10], true, &none).unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!(removed[2], Removal::Deleted(b.id.clone()));

    // In use: refused; forced, the names go but the image stays.
    let c = put(s, &small_image("c"), Some("c:1"));
    let used = |id: &Digest| *id == c.id;
    let err = s.remove("c:1", false, &used).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    let err = s.remove(&c.id.to_string(), false, &used).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert_eq!(
        s.remove("c:1", true, &used).unwrap(),
        vec![Removal::Untagged("docker.io/library/c:1".into())]
    );
    let kept = s.get(&c.id.to_string()).unwrap();
    assert!(kept.repo_tags.is_empty());
    assert!(s.lowerdirs(&kept).is_ok(), "its layers are still there");
    // Dangling but in use: prune keeps it; once unused, prune takes it.
    assert!(s.prune(false, &used).unwrap().deleted.is_empty());
    assert_eq!(s.prune(false, &none).unwrap().deleted, vec![c.id.clone()]);
    assert_empty(s);

    // Repo digests go with the last tag.
    let img = small_image("d");
    let rd = format!("registry.example/d@{}", img.manifest_digest);
    let d = put_with(s, &img, Some("d"), Some(rd.clone()));
    assert_eq!(
        s.remove("d", false, &none).unwrap(),
        vec![
            Removal::Untagged("docker.io/library/d:latest".into()),
            Removal::Untagged(rd),
            Removal::Deleted(d.id)
        ]
    );
    assert!(matches!(
        s.remove("d", false, &none),
        Err(StoreError::ImageNotFound(_))
    ));
}

#[test]
fn removing_an_image_keeps_layers_another_uses() {
    let f = fixture();
    let s = &f.store;
    let base = layer(&[("base", b"shared")], Compression::Gzip);
    let e = image(
        vec![base.clone(), layer(&[("e", b"e")], Compression::Gzip)],
        "e",
    );
    let g = image(
        vec![base.clone(), layer(&[("g", b"g")], Compression::Gzip)],
        "g",
    );
    let e = put(s, &e, Some("e"));
    let g = put(s, &g, Some("g"));
    assert_eq!(layer_dirs(s).len(), 3);
    s.remove("e", false, &|_| false).unwrap();
    let mut want = vec![
        g.chain_ids[0].hex().to_owned(),
        g.chain_ids[1].hex().to_owned(),
    ];
    want.sort();
    assert_eq!(layer_dirs(s), want);
    assert!(s.blobs().has(&base.desc.digest));
    assert!(!s.blobs().has(&e.layers[1].digest));
    assert!(!s.blobs().has(&e.id));
    assert_eq!(names(&s.root().join("layers/l")).len(), 2);
    // The remaining image is intact.
    let dirs = s.lowerdirs(&g).unwrap();
    assert_eq!(
        fs::read(s.layers_dir().join(&dirs[1]).join("base")).unwrap(),
        b"shared"
    );
}

#[test]
fn prune_dangling_versus_all() {
    let f = fixture();
    let s = &f.store;
    let base = layer(&[("base", &[1u8; 50_000][..])], Compression::None);
    let tagged = put(
        s,
        &image(
            vec![base.clone(), layer(&[("t", b"t")], Compression::Gzip)],
            "t",
        ),
        Some("tagged"),
    );
    let dangling = put(
        s,
        &image(
            vec![base.clone(), layer(&[("d", b"d")], Compression::Gzip)],
            "d",
        ),
        None,
    );
    let used = put(s, &small_image("used"), None);
    let digest_only = small_image("by-digest");
    let digest_only = put_with(
        s,
        &digest_only,
        None,
        Some(format!("example.com/x@{}", digest_only.manifest_digest)),
    );
    let in_use = |id: &Digest| *id == used.id;

    let report = s.prune(false, &in_use).unwrap();
    assert_eq!(report.deleted, vec![dangling.id.clone()]);
    assert!(report.reclaimed > 0);
    assert!(!s.blobs().has(&dangling.layers[1].digest));
    assert!(
        s.blobs().has(&base.desc.digest),
        "shared with a tagged image"
    );
    assert!(s.layer(&tagged.chain_ids[0]).unwrap().is_some());
    assert!(s.layer(&dangling.chain_ids[1]).unwrap().is_none());
    assert_eq!(s.list().unwrap().len(), 3);

    let report = s.prune(true, &in_use).unwrap();
    let mut want = vec![tagged.id.clone(), digest_only.id.clone()];
    want.sort();
    assert_eq!(report.deleted, want);
    assert!(report.reclaimed >= 50_000, "{report:?}");
    assert_eq!(s.list().unwrap().len(), 1);
    assert!(matches!(s.get("tagged"), Err(StoreError::ImageNotFound(_))));
    assert_eq!(layer_dirs(s), vec![used.chain_ids[0].hex().to_owned()]);

    let report = s.prune(true, &|_| false).unwrap();
    assert_eq!(report.deleted, vec![used.id]);
    assert_empty(s);
    assert_eq!(s.prune(true, &|_| false).unwrap().deleted, vec![]);
}

#[test]
fn prune_waits_for_leases() {
    let f = fixture();
    let lease = f.store.lease().unwrap();
    let (tx, rx) = mpsc::channel();
    let root = f.store.root().to_path_buf();
    let t = std::thread::spawn(move || {
        let s = ImageStore::open(&root).unwrap();
        tx.send(s.prune(true, &|_| false).is_ok()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "prune ran while a pull held a lease"
    );
    drop(lease);
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    t.join().unwrap();
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn lowerdirs_are_topmost_first_and_140_layers_mount() {
    let f = fixture();
    let s = &f.store;
    let layers: Vec<BuiltLayer> = (0..140)
        .map(|i| {
            let name = format!("layer-{i:03}");
            let content = format!("content {i}");
            let mut entries: Vec<(&str, &[u8])> = vec![(name.as_str(), content.as_bytes())];
            // Every layer rewrites one shared file: the topmost must win.
            let shared = format!("from layer {i}");
            entries.push(("shared", shared.as_bytes()));
            layer(&entries, Compression::Gzip)
        })
        .collect();
    let rec = put(s, &image(layers, "tall"), Some("tall"));
    let dirs = s.lowerdirs(&rec).unwrap();
    assert_eq!(dirs.len(), 140);
    for (dir, chain) in dirs.iter().zip(rec.chain_ids.iter().rev()) {
        let target = fs::read_link(s.layers_dir().join(dir)).unwrap();
        assert_eq!(
            target,
            Path::new(&format!("../sha256/{}/diff", chain.hex())),
            "{dir}"
        );
        assert_eq!(dir.len(), 2 + crate::layers::SHORT_ID_LEN);
    }

    let work = f.dir.path().join("container");
    for d in ["upper", "work", "merged"] {
        fs::create_dir_all(work.join(d)).unwrap();
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dirs.join(":"),
        work.join("upper").display(),
        work.join("work").display()
    );
    assert!(options.len() < 4096, "{} bytes", options.len());
    // Mount for real, from layers_dir(), as the engine does; in a child
    // process so that this test process keeps its working directory.
    let merged = work.join("merged");
    let status = Command::new("mount")
        .current_dir(s.layers_dir())
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t overlay failed");
    let _guard = Mounted(&merged);
    assert_eq!(fs::read(merged.join("layer-000")).unwrap(), b"content 0");
    assert_eq!(fs::read(merged.join("layer-139")).unwrap(), b"content 139");
    assert_eq!(fs::read(merged.join("shared")).unwrap(), b"from layer 139");
}
