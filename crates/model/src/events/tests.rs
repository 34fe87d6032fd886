//! Events: the JSON shape, the text line, the filters, the log's bound and its follow.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use super::*;

fn container_event(action: &str, id: &str, name: &str, image: &str) -> Event {
    let attrs = BTreeMap::from([
        ("image".to_string(), image.to_string()),
        ("name".to_string(), name.to_string()),
        ("com.example.tier".to_string(), "web".to_string()),
    ]);
    Event::new(EventType::Container, action, id, attrs)
}

#[test]
fn json_has_dockers_shape() {
    let e = container_event("start", "abc", "web", "busybox");
    let v = serde_json::to_value(&e).unwrap();
    for key in [
        "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(v["from"], "busybox");
    assert_eq!(v["Actor"]["ID"], "abc");
    assert_eq!(v["Actor"]["Attributes"]["name"], "web");
    assert_eq!(v["scope"], "local");
    assert_eq!(v["time"].as_i64().unwrap(), e.time_nano / 1_000_000_000);
    let vol = serde_json::to_value(Event::volume("create", "data")).unwrap();
    assert!(vol.get("status").is_none() && vol.get("id").is_none());
    assert_eq!(vol["Type"], "volume");
    let net = Event::network("create", "0123abcd", "app", "bridge");
    assert_eq!(
        net.to_text().split_once(' ').unwrap().1,
        "network create 0123abcd (name=app, type=bridge)"
    );
    assert!(filter(&["network=app"]).matches(&net));
    assert!(filter(&["network=0123abcd"]).matches(&net));
}

#[test]
fn text_line_sorts_attributes() {
    let mut e = container_event("die", "abc", "web", "busybox").with("exitCode", "0");
    e.time_nano = 1_796_641_200_123_456_789;
    assert_eq!(
        e.to_text(),
        "2026-12-07T11:00:00.123456789Z container die abc \
         (com.example.tier=web, exitCode=0, image=busybox, name=web)"
    );
}

fn filter(args: &[&str]) -> Filter {
    Filter::parse(args).unwrap()
}

#[test]
fn filters_follow_moby() {
    let start = container_event("start", "abc123", "web", "busybox:latest");
    let die = container_event("die", "abc123", "web", "busybox:latest");
    let image = Event::image("pull", "busybox:latest", "busybox:latest");
    assert!(filter(&[]).matches(&start));
    // Values of one key: alternatives; keys: all.
    assert!(filter(&["event=die", "event=start"]).matches(&start));
    assert!(!filter(&["event=die", "container=web"]).matches(&start));
    assert!(filter(&["event=die", "container=web"]).matches(&die));
    // Names and ids by prefix.
    assert!(filter(&["container=abc"]).matches(&start));
    assert!(filter(&["container=we"]).matches(&start));
    assert!(!filter(&["container=other"]).matches(&start));
    // A container filter leaves out what is not that container.
    assert!(!filter(&["container=web"]).matches(&image));
    // Images: a container's image, with or without tag; an image's name.
    assert!(filter(&["image=busybox"]).matches(&start));
    assert!(filter(&["image=busybox:latest"]).matches(&image));
    assert!(!filter(&["image=alpine"]).matches(&start));
    assert!(filter(&["type=image"]).matches(&image));
    assert!(!filter(&["type=image"]).matches(&start));
    // Labels: every one must hold.
    assert!(filter(&["label=com.example.tier"]).matches(&start));
    assert!(filter(&["label=com.example.tier=web"]).matches(&start));
    assert!(!filter(&["label=com.example.tier=db"]).matches(&start));
    assert!(!filter(&["label=com.example.tier", "label=other"]).matches(&start));
    // Suffixed actions by prefix.
    let exec = container_event("exec_start: sh -c true", "abc123", "web", "busybox");
    assert!(filter(&["event=exec_start"]).matches(&exec));
    assert!(!filter(&["event=exec"]).matches(&exec));
    assert!(filter(&["volume=data"]).matches(&Event::volume("create", "data")));
}

#[test]
fn bad_filters_are_refused() {
    assert!(Filter::parse(&["bogus=1"]).is_err());
    assert!(Filter::parse(&["container"]).is_err());
}

fn read_all(log: &EventLog, range: &TimeRange) -> Vec<Event> {
    let mut got = Vec::new();
    log.read(range, &mut |e| {
        got.push(e.clone());
        Ok(())
    })
    .unwrap();
    got
}

#[test]
fn log_appends_reads_and_stays_bounded() {
    let root = tempfile::tempdir().unwrap();
    let log = EventLog::with_bound(root.path(), 4096);
    for n in 0..500 {
        log.append(&Event::volume("create", &format!("v{n}")))
            .unwrap();
    }
    let size = |name: &str| std::fs::metadata(log.dir().join(name)).unwrap().len();
    assert!(size(LOG_FILE) <= 4096 && size(OLD_FILE) <= 4096);
    let got = read_all(&log, &TimeRange::default());
    assert!(!got.is_empty() && got.len() < 500);
    // The newest events, in order.
    assert_eq!(got.last().unwrap().actor.id, "v499");
    let first: usize = got[0].actor.id[1..].parse().unwrap();
    let ids: Vec<String> = (first..500).map(|n| format!("v{n}")).collect();
    let got_ids: Vec<String> = got.iter().map(|e| e.actor.id.clone()).collect();
    assert_eq!(got_ids, ids);
}

#[test]
fn a_lock_holder_that_stalls_does_not_stall_appenders() {
    let root = tempfile::tempdir().unwrap();
    let log = EventLog::new(root.path());
    log.append(&Event::volume("create", "first")).unwrap();
    // Another holder (its own open file description) keeps the lock, as a stopped process
    // would.
    let held = std::fs::File::open(log.dir().join("events.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    log.append(&Event::volume("create", "second")).unwrap();
    let ids: Vec<String> = read_all(&log, &TimeRange::default())
        .into_iter()
        .map(|e| e.actor.id)
        .collect();
    assert_eq!(ids, ["first", "second"]);
}

#[test]
fn read_selects_by_time() {
    let root = tempfile::tempdir().unwrap();
    let log = EventLog::new(root.path());
    let mut old = Event::volume("create", "old");
    old.time_nano -= 3_600_000_000_000;
    log.append(&old).unwrap();
    log.append(&Event::volume("create", "new")).unwrap();
    let since = TimeRange {
        since: Some(SystemTime::now() - Duration::from_secs(60)),
        until: None,
    };
    let got = read_all(&log, &since);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].actor.id, "new");
    let until = TimeRange {
        since: None,
        until: Some(SystemTime::now() - Duration::from_secs(60)),
    };
    assert_eq!(read_all(&log, &until)[0].actor.id, "old");
}

fn volume_numbers(seen: &[String]) -> Vec<usize> {
    seen.iter()
        .filter_map(|s| s.strip_prefix('v')?.parse().ok())
        .collect()
}

#[test]
fn follow_sees_appends_and_stops() {
    let root = tempfile::tempdir().unwrap();
    let log = EventLog::with_bound(root.path(), 2048);
    log.append(&Event::volume("create", "before")).unwrap();
    let (stop_read, stop_write) = nix::unistd::pipe().unwrap();
    let (ack, acked) = std::sync::mpsc::channel::<String>();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for n in 0..100 {
                let id = format!("v{n}");
                log.append(&Event::volume("create", &id)).unwrap();
                // A reader never lags a whole file behind (that is the next test's case).
                if n % 5 == 4 {
                    while acked.recv().unwrap() != id {}
                }
            }
            log.append(&Event::volume("create", "last")).unwrap();
        })
    };
    let mut seen = Vec::new();
    let mut stop_write = Some(stop_write);
    log.follow(&TimeRange::default(), Some(stop_read.as_fd()), &mut |e| {
        seen.push(e.actor.id.clone());
        let _ = ack.send(e.actor.id.clone());
        if e.actor.id == "last" {
            // Closing the write end makes the stop fd readable (hung up).
            stop_write.take();
        }
        Ok(())
    })
    .unwrap();
    writer.join().unwrap();
    assert_eq!(seen.first().map(String::as_str), Some("before"));
    assert_eq!(seen.last().map(String::as_str), Some("last"));
    assert_eq!(volume_numbers(&seen), (0..100).collect::<Vec<_>>());
}

#[test]
fn follow_reads_through_two_rotations() {
    let root = tempfile::tempdir().unwrap();
    // Ten lines a file (every id the same length).
    let line = serde_json::to_vec(&Event::volume("create", "x00"))
        .unwrap()
        .len()
        + 1;
    let log = EventLog::with_bound(root.path(), 10 * line as u64);
    log.append(&Event::volume("create", "x00")).unwrap();
    let (stop_read, stop_write) = nix::unistd::pipe().unwrap();
    let mut stop_write = Some(stop_write);
    let mut seen = Vec::new();
    log.follow(&TimeRange::default(), Some(stop_read.as_fd()), &mut |e| {
        seen.push(e.actor.id.clone());
        if e.actor.id == "x00" {
            // Two rotations before the follower looks again: its file, then a whole one,
            // then the current.
            for n in 0..25 {
                log.append(&Event::volume("create", &format!("v{n:02}")))
                    .map_err(std::io::Error::other)?;
            }
        }
        if e.actor.id == "v24" {
            stop_write.take();
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(volume_numbers(&seen), (0..25).collect::<Vec<_>>());
}
