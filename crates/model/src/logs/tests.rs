//! Writer, readers and follower together, on temporary directories.

use std::cell::Cell;
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::files::LogFile;
use super::format::{Format, Record, Source, CHUNK};
use super::*;
use crate::error::Error;

/// Generous: only there so that a broken follow fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

fn settings(driver: Driver, max_size: Option<u64>, max_file: u32) -> LogSettings {
    LogSettings {
        driver,
        max_size,
        max_file,
        ..LogSettings::default()
    }
}

fn read_all(dir: &Path, settings: &LogSettings, opts: &ReadOptions) -> Vec<LogEntry> {
    let mut got = Vec::new();
    read(dir, settings, opts, &mut |e| {
        got.push(e.clone());
        Ok(())
    })
    .unwrap();
    got
}

fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .collect()
}

fn tail_opts(n: usize) -> ReadOptions {
    ReadOptions {
        tail: Some(n),
        ..ReadOptions::default()
    }
}

/// A log file that counts the bytes read from it.
struct Counting {
    file: LogFile,
    read: Cell<u64>,
}

impl Source for Counting {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, offset)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
    fn size(&self) -> std::io::Result<u64> {
        self.file.size()
    }
    fn path(&self) -> &Path {
        self.file.path()
    }
}

fn counting(path: &Path) -> Counting {
    Counting {
        file: LogFile::open(path.to_path_buf()).unwrap().unwrap(),
        read: Cell::new(0),
    }
}

/// Writes entries with chosen times (seconds since the epoch).
fn write_timed(path: &Path, format: Format, entries: &[(Stream, u64, &str)]) {
    let mut out = Vec::new();
    for (stream, secs, text) in entries {
        format.encode(
            &Record {
                stream: *stream,
                time: UNIX_EPOCH + Duration::from_secs(*secs),
                bytes: text.as_bytes(),
                partial: false,
            },
            &mut out,
        );
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

#[test]
fn json_file_lines_are_dockers_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LogWriter::open(dir.path(), &LogSettings::default()).unwrap();
    writer
        .write(Stream::Stdout, b"hello \"world\"\n", false)
        .unwrap();
    writer.write(Stream::Stderr, b"no newline", false).unwrap();
    let text = fs::read_to_string(dir.path().join("container.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let expect = [
        r#"{"log":"hello \"world\"\n","stream":"stdout","time":""#,
        r#"{"log":"no newline\n","stream":"stderr","time":""#,
    ];
    for (line, prefix) in lines.iter().zip(expect) {
        let time = line
            .strip_prefix(prefix)
            .unwrap()
            .strip_suffix("\"}")
            .unwrap();
        assert!(
            time.ends_with('Z') && humantime::parse_rfc3339(time).is_ok(),
            "{time}"
        );
    }
    assert_eq!(lines.len(), 2);
    assert!(text.ends_with("\"}\n"));
}

#[test]
fn long_lines_become_partial_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LogWriter::open(dir.path(), &LogSettings::default()).unwrap();
    let mut line = vec![b'a'; 40_000];
    line.push(b'\n');
    // As read from a pipe: in pieces, with the start of the next line.
    writer.append(Stream::Stdout, &line[..10_000]).unwrap();
    writer.append(Stream::Stdout, &line[10_000..]).unwrap();
    writer.append(Stream::Stdout, b"next\nrest").unwrap();
    writer.finish(Stream::Stdout).unwrap();
    writer.write(Stream::Stderr, b"piece", true).unwrap();
    writer
        .write(Stream::Stderr, &vec![b'b'; MAX_ENTRY + 1], false)
        .unwrap();

    let got = read_all(dir.path(), &LogSettings::default(), &ReadOptions::default());
    let shape: Vec<(usize, bool)> = got.iter().map(|e| (e.bytes.len(), e.partial)).collect();
    assert_eq!(
        shape,
        [
            (MAX_ENTRY, true),
            (MAX_ENTRY, true),
            (40_000 - 2 * MAX_ENTRY + 1, false),
            (5, false),
            (5, false),
            (5, true),
            (MAX_ENTRY, true),
            (2, false),
        ]
    );
    assert_eq!(texts(&got)[3..5], ["next\n", "rest\n"]);
    let raw = fs::read_to_string(dir.path().join("container.log")).unwrap();
    let first = raw.lines().next().unwrap();
    assert!(first.starts_with("{\"log\":\"aaaa") && first.contains("aaa\",\"stream\""));
}

#[test]
fn rotation_keeps_max_file_files_and_the_newest_data() {
    for driver in [Driver::JsonFile, Driver::Local] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, Some(1000), 3);
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        for i in 0..300 {
            writer
                .write(Stream::Stdout, format!("line {i}").as_bytes(), false)
                .unwrap();
        }
        let name = settings.file_name().unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [name.to_string(), format!("{name}.1"), format!("{name}.2")]
        );
        for n in &names {
            assert!(
                fs::metadata(dir.path().join(n)).unwrap().len() <= 1000,
                "{n}"
            );
        }
        let got = texts(&read_all(dir.path(), &settings, &ReadOptions::default()));
        assert_eq!(got.last().unwrap(), "line 299\n");
        let first: usize = got[0]
            .trim_end()
            .strip_prefix("line ")
            .unwrap()
            .parse()
            .unwrap();
        let expect: Vec<String> = (first..300).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, expect, "{driver:?}");
        assert!(first > 0, "{driver:?}: {first}");
    }
}

#[test]
fn one_file_rotation_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(Driver::JsonFile, Some(500), 1);
    let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
    for i in 0..50 {
        writer
            .write(Stream::Stdout, format!("line {i}").as_bytes(), false)
            .unwrap();
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    let got = texts(&read_all(dir.path(), &settings, &ReadOptions::default()));
    assert_eq!(got.last().unwrap(), "line 49\n");
    assert!(got.len() < 50);
}

#[test]
fn tail_of_a_large_log_reads_a_few_chunks_from_the_end() {
    for (format, driver) in [
        (Format::Json, Driver::JsonFile),
        (Format::Local, Driver::Local),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, None, 1);
        let path = dir.path().join(settings.file_name().unwrap());
        let mut block = Vec::new();
        while block.len() < 1 << 20 {
            let record = Record {
                stream: Stream::Stdout,
                time: SystemTime::now(),
                bytes: b"some filler line of a busy container\n",
                partial: false,
            };
            format.encode(&record, &mut block);
        }
        let mut file = fs::File::create(&path).unwrap();
        for _ in 0..50 {
            file.write_all(&block).unwrap();
        }
        drop(file);
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        for i in 0..10 {
            writer
                .write(Stream::Stderr, format!("last {i}").as_bytes(), false)
                .unwrap();
        }
        let src = counting(&path);
        assert!(src.size().unwrap() > 50_000_000);
        let (entries, end) =
            tail::tail(std::slice::from_ref(&src), format, &tail_opts(5), 5).unwrap();
        assert_eq!(
            texts(&entries),
            ["last 5\n", "last 6\n", "last 7\n", "last 8\n", "last 9\n"]
        );
        assert_eq!(end, src.size().unwrap());
        assert!(
            src.read.get() <= 3 * CHUNK as u64,
            "{format:?}: read {}",
            src.read.get()
        );
        // The public entry point gives the same.
        let got = read_all(dir.path(), &settings, &tail_opts(5));
        assert_eq!(got, entries);
    }
}

#[test]
fn tail_goes_on_into_rotated_files() {
    for driver in [Driver::JsonFile, Driver::Local] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, Some(600), 4);
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        for i in 0..=100 {
            writer
                .write(Stream::Stdout, format!("line {i}").as_bytes(), false)
                .unwrap();
        }
        assert!(dir
            .path()
            .join(format!("{}.3", settings.file_name().unwrap()))
            .exists());
        let got = texts(&read_all(dir.path(), &settings, &tail_opts(20)));
        let expect: Vec<String> = (81..=100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, expect, "{driver:?}");
        assert!(read_all(dir.path(), &settings, &tail_opts(0)).is_empty());
        let everything = read_all(dir.path(), &settings, &tail_opts(10_000));
        assert_eq!(
            everything,
            read_all(dir.path(), &settings, &ReadOptions::default())
        );
    }
}

#[test]
fn since_until_and_streams_filter() {
    for (format, driver) in [
        (Format::Json, Driver::JsonFile),
        (Format::Local, Driver::Local),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, None, 1);
        let path = dir.path().join(settings.file_name().unwrap());
        let entries: Vec<(Stream, u64, String)> = (0..10)
            .map(|i| {
                let stream = if i % 2 == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                (stream, 1000 + i, format!("at {i}\n"))
            })
            .collect();
        let borrowed: Vec<(Stream, u64, &str)> = entries
            .iter()
            .map(|(s, t, x)| (*s, *t, x.as_str()))
            .collect();
        write_timed(&path, format, &borrowed);
        let at = |s| Some(UNIX_EPOCH + Duration::from_secs(s));
        let window = ReadOptions {
            since: at(1003),
            until: at(1006),
            ..ReadOptions::default()
        };
        assert_eq!(
            texts(&read_all(dir.path(), &settings, &window)),
            ["at 3\n", "at 4\n", "at 5\n", "at 6\n"]
        );
        let stderr_tail = ReadOptions {
            tail: Some(2),
            stdout: false,
            ..window.clone()
        };
        assert_eq!(
            texts(&read_all(dir.path(), &settings, &stderr_tail)),
            ["at 3\n", "at 5\n"]
        );
        let stdout_only = ReadOptions {
            stderr: false,
            ..ReadOptions::default()
        };
        assert_eq!(read_all(dir.path(), &settings, &stdout_only).len(), 5);
    }
}

#[test]
fn local_round_trips_bytes_streams_and_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let settings = LogSettings::from_config(&crate::config::LogConfig {
        kind: "local".to_string(),
        ..Default::default()
    })
    .unwrap();
    let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
    let before = SystemTime::now();
    writer
        .write(Stream::Stdout, b"\xff\x00 binary\n", false)
        .unwrap();
    writer.write(Stream::Stderr, b"piece", true).unwrap();
    writer.write(Stream::Stderr, b"", false).unwrap();
    assert!(dir.path().join("container.log.local").exists());
    let got = read_all(dir.path(), &settings, &ReadOptions::default());
    let shape: Vec<(Stream, &[u8], bool)> = got
        .iter()
        .map(|e| (e.stream, e.bytes.as_slice(), e.partial))
        .collect();
    assert_eq!(
        shape,
        [
            (Stream::Stdout, &b"\xff\x00 binary\n"[..], false),
            (Stream::Stderr, &b"piece"[..], true),
            (Stream::Stderr, &b"\n"[..], false),
        ]
    );
    assert!(got
        .iter()
        .all(|e| e.time >= before && e.time <= SystemTime::now()));
}

#[test]
fn torn_records_are_cut_when_reopened_and_skipped_by_readers() {
    for driver in [Driver::JsonFile, Driver::Local] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, None, 1);
        let path = dir.path().join(settings.file_name().unwrap());
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        writer.write(Stream::Stdout, b"whole", false).unwrap();
        drop(writer);
        let whole = fs::metadata(&path).unwrap().len();
        // A crash in the middle of a record.
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0x10, 0, 0, 0, 0x10, 1, 2]).unwrap();
        drop(file);
        assert_eq!(
            texts(&read_all(dir.path(), &settings, &tail_opts(5))),
            ["whole\n"]
        );
        assert_eq!(
            texts(&read_all(dir.path(), &settings, &ReadOptions::default())),
            ["whole\n"]
        );
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), whole, "{driver:?}");
        writer.write(Stream::Stdout, b"after", false).unwrap();
        assert_eq!(
            texts(&read_all(dir.path(), &settings, &ReadOptions::default())),
            ["whole\n", "after\n"]
        );
    }
}

#[test]
fn none_writes_nothing_and_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let none = settings(Driver::None, None, 1);
    let mut writer = LogWriter::open(dir.path(), &none).unwrap();
    writer.write(Stream::Stdout, b"lost\n", false).unwrap();
    writer.append(Stream::Stdout, b"lost\n").unwrap();
    assert_eq!(writer.path(), None);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    let expect = "configured logging driver does not support reading";
    match read(dir.path(), &none, &ReadOptions::default(), &mut |_| Ok(())) {
        Err(Error::Invalid(text)) => assert_eq!(text, expect),
        other => panic!("{other:?}"),
    }
    let followed = follow(
        dir.path(),
        &none,
        &ReadOptions::default(),
        None,
        &mut |_| Ok(()),
    );
    assert!(matches!(followed, Err(Error::Invalid(text)) if text == expect));
}

#[test]
fn a_log_not_written_yet_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_all(dir.path(), &LogSettings::default(), &tail_opts(3)).is_empty());
    assert!(read_all(
        &dir.path().join("gone"),
        &LogSettings::default(),
        &ReadOptions::default()
    )
    .is_empty());
}

/// What a follow thread reports.
enum Seen {
    Entry(String),
    Returned(crate::Result<()>),
}

/// Starts `follow` on a thread; returns its reports and the write end of its stop pipe.
fn start_follow(
    dir: &Path,
    settings: &LogSettings,
    opts: ReadOptions,
) -> (mpsc::Receiver<Seen>, std::os::fd::OwnedFd) {
    let (stop_read, stop_write) = nix::unistd::pipe().unwrap();
    let (tx, rx) = mpsc::channel();
    let (dir, settings) = (dir.to_path_buf(), settings.clone());
    std::thread::spawn(move || {
        let entries = tx.clone();
        let result = follow(&dir, &settings, &opts, Some(stop_read.as_fd()), &mut |e| {
            let _ = entries.send(Seen::Entry(String::from_utf8_lossy(&e.bytes).into_owned()));
            Ok(())
        });
        let _ = tx.send(Seen::Returned(result));
    });
    (rx, stop_write)
}

fn next_entry(rx: &mpsc::Receiver<Seen>) -> String {
    match rx.recv_timeout(DEADLINE) {
        Ok(Seen::Entry(text)) => text,
        Ok(Seen::Returned(r)) => panic!("follow returned early: {r:?}"),
        Err(e) => panic!("no entry: {e}"),
    }
}

fn returned(rx: &mpsc::Receiver<Seen>) -> (Vec<String>, crate::Result<()>) {
    let mut entries = Vec::new();
    loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(Seen::Entry(text)) => entries.push(text),
            Ok(Seen::Returned(r)) => return (entries, r),
            Err(e) => panic!("follow did not return: {e}"),
        }
    }
}

#[test]
fn follow_sees_new_lines_across_rotations_and_stops_when_told() {
    for (driver, max_file) in [
        (Driver::JsonFile, 3),
        (Driver::Local, 2),
        (Driver::JsonFile, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(driver, Some(2000), max_file);
        let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
        writer.write(Stream::Stdout, b"old 1", false).unwrap();
        writer.write(Stream::Stdout, b"old 2", false).unwrap();
        let (rx, stop) = start_follow(dir.path(), &settings, tail_opts(1));
        assert_eq!(next_entry(&rx), "old 2\n");
        // Bursts shorter than a file: the follower is never more than one rotation behind.
        for burst in 0..10 {
            for i in 0..8 {
                writer
                    .write(Stream::Stdout, format!("new {burst} {i}").as_bytes(), false)
                    .unwrap();
            }
            for i in 0..8 {
                assert_eq!(
                    next_entry(&rx),
                    format!("new {burst} {i}\n"),
                    "{driver:?} {max_file}"
                );
            }
        }
        assert!(
            dir.path()
                .join(format!("{}.1", settings.file_name().unwrap()))
                .exists()
                || max_file == 1
        );
        // Written just before the stop: drained before follow returns.
        for i in 0..5 {
            writer
                .write(Stream::Stderr, format!("last {i}").as_bytes(), false)
                .unwrap();
        }
        nix::unistd::write(&stop, b"x").unwrap();
        let (rest, result) = returned(&rx);
        result.unwrap();
        let expect: Vec<String> = (0..5).map(|i| format!("last {i}\n")).collect();
        assert_eq!(rest, expect, "{driver:?} {max_file}");
    }
}

#[test]
fn follow_waits_for_a_log_not_created_yet_and_ends_when_it_is_removed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("container");
    fs::create_dir(&dir).unwrap();
    let settings = LogSettings::default();
    let (rx, _stop) = start_follow(&dir, &settings, ReadOptions::default());
    let mut writer = LogWriter::open(&dir, &settings).unwrap();
    writer.write(Stream::Stdout, b"first", false).unwrap();
    assert_eq!(next_entry(&rx), "first\n");
    fs::remove_dir_all(&dir).unwrap();
    let (rest, result) = returned(&rx);
    result.unwrap();
    assert!(rest.is_empty());
}

#[test]
fn follow_ends_at_until() {
    let dir = tempfile::tempdir().unwrap();
    let settings = LogSettings::default();
    let mut writer = LogWriter::open(dir.path(), &settings).unwrap();
    writer.write(Stream::Stdout, b"before", false).unwrap();
    let opts = ReadOptions {
        until: Some(SystemTime::now() + Duration::from_millis(200)),
        ..ReadOptions::default()
    };
    let (rx, _stop) = start_follow(dir.path(), &settings, opts);
    let (entries, result) = returned(&rx);
    result.unwrap();
    assert_eq!(entries, ["before\n"]);
}

#[test]
fn failed_writes_are_returned_and_the_writer_goes_on() {
    // A full disk: every write fails with ENOSPC, none panics.
    let full = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", full.path().join("container.log")).unwrap();
    let mut writer = LogWriter::open(full.path(), &LogSettings::default()).unwrap();
    for _ in 0..3 {
        match writer.write(Stream::Stdout, b"lost", false) {
            Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("{other:?}"),
        }
    }
    // A rotation into a directory that is gone fails; the writer recovers once it is back.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("c");
    fs::create_dir(&dir).unwrap();
    let settings = settings(Driver::JsonFile, Some(100), 2);
    let mut writer = LogWriter::open(&dir, &settings).unwrap();
    writer.write(Stream::Stdout, b"kept before", false).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    let long = [b'x'; 80];
    assert!(writer.write(Stream::Stdout, &long, false).is_err());
    fs::create_dir(&dir).unwrap();
    writer
        .write(Stream::Stdout, b"written after", false)
        .unwrap();
    assert_eq!(
        texts(&read_all(&dir, &settings, &ReadOptions::default())),
        ["written after\n"]
    );
}
