//! TEMPORARY measurement harness (removed before finishing).
#[path = "../tests/common/mod.rs"]
mod common;

use pelagos_registry::{AuthFile, Client, Platform, RegistryConfig};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "default" {
        time_default();
        return;
    }
    if args[1] == "serve" {
        let reg = pelagos_testkit::registry::Registry::start(pelagos_testkit::registry::Auth::None)
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        common::single_image_layout(&layout, "v1", &common::noise(300_000, 1));
        reg.push_oci_layout(&layout, "test/app:v1", false).unwrap();
        println!("{}", reg.host());
        std::thread::sleep(std::time::Duration::from_secs(3600));
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = RegistryConfig::default();
    if let Some(d) = args.get(2) {
        config.certs_dir = d.into();
    }
    let client = Client::new(&config, AuthFile::load(&tmp.path().join("c.json")).unwrap());
    let r = pelagos_image::Reference::parse(&args[1]).unwrap();
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    let t1 = Instant::now();
    let cfg = client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap();
    let (bytes, _) = common::read_blob(&client, &resolved, &resolved.layers[0]).await;
    let t2 = Instant::now();
    println!(
        "resolve {:?} blobs {:?} total {:?} ({} + {} bytes)",
        t1 - t0,
        t2 - t1,
        t2 - t0,
        cfg.len(),
        bytes.unwrap().len()
    );
}
#[allow(dead_code)]
fn time_default() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for _ in 0..3 {
        let t = Instant::now();
        let _c = reqwest::Client::new();
        println!("reqwest::Client::new {:?}", t.elapsed());
    }
}
