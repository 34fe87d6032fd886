//! The few D-Bus method calls the systemd driver makes, on a blocking unix socket.
//!
//! Written by hand instead of using zbus: linking zbus into the runtime grew the binary by
//! 1.1 MB and the peak RSS of *every* container start by 360 KiB (bench/run: 3584 KiB against
//! crun's 3332), although systemd is rarely in use. What is needed is small: SASL EXTERNAL,
//! `Hello`, method calls whose arguments are strings, booleans, u64s and arrays of u32 inside
//! variants, and replies carrying an object path, a variant string or an error.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A D-Bus value this client can send.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `s`
    Str(String),
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `au`
    U32Array(Vec<u32>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::U32Array(_) => "au",
        }
    }
}

/// An argument of a method call.
pub enum Arg<'a> {
    /// `s`
    Str(&'a str),
    /// `a(sv)`: properties.
    Props(&'a [(&'a str, Value)]),
    /// `a(sa(sv))`: auxiliary units (always empty here).
    EmptyAux,
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::Props(_) => "a(sv)",
            Arg::EmptyAux => "a(sa(sv))",
        }
    }
}

/// What a reply carried.
#[derive(Debug)]
pub enum Reply {
    /// A method return whose body starts with an object path or string.
    Text(String),
    /// A method return whose body is one variant holding a string (Properties.Get).
    VariantText(String),
    /// An empty or unparsed method return.
    Other,
}

/// A D-Bus error reply or a transport failure.
#[derive(Debug)]
pub struct DbusError {
    /// The error name (`org.freedesktop.systemd1.NoSuchUnit`), empty for transport errors.
    pub name: String,
    /// Human-readable text.
    pub message: String,
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

fn transport(what: &str, e: impl std::fmt::Display) -> DbusError {
    DbusError {
        name: String::new(),
        message: format!("{what}: {e}"),
    }
}

/// Little-endian marshalling with D-Bus alignment (relative to the buffer's start, which is
/// always 8-aligned in a message).
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn align(&mut self, n: usize) {
        let padded = self.0.len().div_ceil(n) * n;
        self.0.resize(padded, 0);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.align(8);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    /// An array: length placeholder, padding to the element alignment, elements, length.
    fn array(&mut self, elem_align: usize, body: impl FnOnce(&mut Writer)) {
        self.align(4);
        let len_at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.align(elem_align);
        let start = self.0.len();
        body(self);
        let len = (self.0.len() - start) as u32;
        self.0[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn variant(&mut self, v: &Value) {
        self.sig(v.signature());
        match v {
            Value::Str(s) => self.str(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U64(n) => self.u64(*n),
            Value::U32Array(items) => self.array(4, |w| items.iter().for_each(|i| w.u32(*i))),
        }
    }
    fn arg(&mut self, a: &Arg<'_>) {
        match a {
            Arg::Str(s) => self.str(s),
            Arg::Props(props) => self.array(8, |w| {
                for (name, value) in props.iter() {
                    w.align(8);
                    w.str(name);
                    w.variant(value);
                }
            }),
            Arg::EmptyAux => self.array(8, |_| {}),
        }
    }
}

/// Reading back what replies need.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.align(4);
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = String::from_utf8(self.take(n)?.to_vec()).ok()?;
        self.take(1)?;
        Some(s)
    }
    fn sig(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        let s = String::from_utf8(self.take(n)?.to_vec()).ok()?;
        self.take(1)?;
        Some(s)
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// One connection to a bus.
pub struct Bus {
    sock: UnixStream,
    serial: u32,
}

/// The system bus address: `$DBUS_SYSTEM_BUS_ADDRESS` (`unix:path=...`) or the standard path.
fn system_bus_path() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.split(';')
                .find_map(|part| part.strip_prefix("unix:path=").map(str::to_owned))
        })
        .map(|p| p.split(',').next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "/run/dbus/system_bus_socket".to_owned())
}

impl Bus {
    /// Connects to the system bus, authenticates as our uid and says Hello.
    pub fn system(timeout: Duration) -> Result<Bus, DbusError> {
        let path = system_bus_path();
        let sock = UnixStream::connect(&path).map_err(|e| transport(&path, e))?;
        sock.set_read_timeout(Some(timeout))
            .and_then(|_| sock.set_write_timeout(Some(timeout)))
            .map_err(|e| transport("socket timeout", e))?;
        let mut bus = Bus { sock, serial: 0 };
        bus.authenticate()?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        Ok(bus)
    }

    fn authenticate(&mut self) -> Result<(), DbusError> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .map_err(|e| transport("send AUTH", e))?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            self.sock
                .read_exact(&mut byte)
                .map_err(|e| transport("read AUTH reply", e))?;
            line.push(byte[0]);
            if line.len() > 512 {
                return Err(transport("AUTH", "reply too long"));
            }
        }
        if !line.starts_with(b"OK ") {
            return Err(transport(
                "AUTH EXTERNAL refused",
                String::from_utf8_lossy(&line).trim(),
            ));
        }
        self.sock
            .write_all(b"BEGIN\r\n")
            .map_err(|e| transport("send BEGIN", e))
    }

    /// Calls a method and waits for its reply (signals and other traffic are skipped).
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Reply, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let signature: String = args.iter().map(Arg::signature).collect();
        let mut body = Writer::default();
        for a in args {
            body.arg(a);
        }
        let mut msg = Writer::default();
        msg.u8(b'l');
        msg.u8(METHOD_CALL);
        msg.u8(0);
        msg.u8(1);
        msg.u32(body.0.len() as u32);
        msg.u32(serial);
        msg.array(8, |w| {
            let mut field = |code: u8, sig: &str, value: &str| {
                w.align(8);
                w.u8(code);
                w.sig(sig);
                if sig == "g" {
                    w.sig(value);
                } else {
                    w.str(value);
                }
            };
            field(1, "o", path);
            field(2, "s", interface);
            field(3, "s", member);
            field(6, "s", destination);
            if !signature.is_empty() {
                field(8, "g", &signature);
            }
        });
        msg.align(8);
        msg.0.extend_from_slice(&body.0);
        self.sock
            .write_all(&msg.0)
            .map_err(|e| transport(&format!("send {member}"), e))?;
        loop {
            let (kind, reply_serial, error_name, sig, body) = self.read_message()?;
            if reply_serial != Some(serial) {
                continue;
            }
            let mut r = Reader { buf: &body, pos: 0 };
            return match kind {
                ERROR => Err(DbusError {
                    name: error_name.unwrap_or_default(),
                    message: if sig.starts_with('s') {
                        r.str().unwrap_or_default()
                    } else {
                        String::new()
                    },
                }),
                METHOD_RETURN => Ok(match sig.as_str() {
                    s if s.starts_with('o') || s.starts_with('s') => {
                        Reply::Text(r.str().unwrap_or_default())
                    }
                    "v" => match r.sig().as_deref() {
                        Some("s") | Some("o") => Reply::VariantText(r.str().unwrap_or_default()),
                        _ => Reply::Other,
                    },
                    _ => Reply::Other,
                }),
                _ => continue,
            };
        }
    }

    /// Reads one message: (type, reply serial, error name, signature, body).
    #[allow(clippy::type_complexity)]
    fn read_message(
        &mut self,
    ) -> Result<(u8, Option<u32>, Option<String>, String, Vec<u8>), DbusError> {
        let mut fixed = [0u8; 16];
        self.sock
            .read_exact(&mut fixed)
            .map_err(|e| transport("read reply", e))?;
        if fixed[0] != b'l' {
            return Err(transport("reply", "big-endian messages are not supported"));
        }
        let kind = fixed[1];
        let body_len = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
        let fields_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        if body_len > 64 << 20 || fields_len > 64 << 10 {
            return Err(transport("reply", "message too large"));
        }
        let padded = fields_len.div_ceil(8) * 8;
        let mut rest = vec![0u8; padded + body_len];
        self.sock
            .read_exact(&mut rest)
            .map_err(|e| transport("read reply", e))?;
        // Parse the header fields; positions are relative to the message start (16 bytes in).
        let mut whole = fixed.to_vec();
        whole.extend_from_slice(&rest[..fields_len]);
        let mut r = Reader {
            buf: &whole,
            pos: 16,
        };
        let (mut reply_serial, mut error_name, mut signature) = (None, None, String::new());
        while r.pos < whole.len() {
            r.align(8);
            let Some(code) = r.u8() else { break };
            let Some(sig) = r.sig() else { break };
            match sig.as_str() {
                "u" => {
                    let v = r.u32();
                    if code == 5 {
                        reply_serial = v;
                    }
                }
                "s" | "o" => {
                    let v = r.str();
                    if code == 4 {
                        error_name = v;
                    }
                }
                "g" => {
                    let v = r.sig();
                    if code == 8 {
                        signature = v.unwrap_or_default();
                    }
                }
                _ => break,
            }
        }
        let body = rest[padded..].to_vec();
        Ok((kind, reply_serial, error_name, signature, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_properties_with_alignment() {
        let props = [
            ("Delegate".to_string(), Value::Bool(true)),
            ("PIDs".to_string(), Value::U32Array(vec![7, 8])),
            ("MemoryMax".to_string(), Value::U64(1 << 20)),
        ];
        let refs: Vec<(&str, Value)> = props.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let mut w = Writer::default();
        w.arg(&Arg::Str("a"));
        w.arg(&Arg::Props(&refs));
        let b = &w.0;
        // "a": len 1, 'a', NUL; then the array length at offset 8 (aligned 4 after 6 bytes).
        assert_eq!(&b[0..6], &[1, 0, 0, 0, b'a', 0]);
        let array_len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        // Elements start 8-aligned at 16 and the array ends at the buffer's end.
        assert_eq!(16 + array_len, b.len());
        // First element: "Delegate" then variant signature "b" then the u32 1.
        assert_eq!(&b[16..20], &8u32.to_le_bytes());
        assert_eq!(&b[20..29], b"Delegate\0");
        assert_eq!(&b[29..32], &[1, b'b', 0]);
        assert_eq!(&b[32..36], &1u32.to_le_bytes());
        // The u64 is 8-aligned.
        let pos = b.windows(10).position(|x| x == b"MemoryMax\0").unwrap();
        let after_sig = pos + 10 + 3; // sig "t": len, 't', NUL
        let aligned = after_sig.div_ceil(8) * 8;
        assert_eq!(&b[aligned..aligned + 8], &(1u64 << 20).to_le_bytes());
    }

    #[test]
    fn reads_header_fields_and_strings() {
        let mut w = Writer::default();
        w.str("org.freedesktop.systemd1.NoSuchUnit");
        let mut r = Reader { buf: &w.0, pos: 0 };
        assert_eq!(
            r.str().as_deref(),
            Some("org.freedesktop.systemd1.NoSuchUnit")
        );
        assert!(r.u32().is_none(), "nothing left");
    }
}
