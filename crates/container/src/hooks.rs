//! Running OCI hooks: the hook's path and args exactly as given, its env as given (or, when the
//! hook has no `env`, the runtime's own, as runc and crun do), the container state JSON on
//! stdin, and its timeout enforced.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// A hook's exec through the launch stub: `--exec PATH ARGV...` and its environment, made
/// before the fork.
struct StubExec {
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl StubExec {
    fn new(hook: &Hook) -> std::result::Result<StubExec, std::ffi::NulError> {
        let path = CString::new(hook.path().as_os_str().as_bytes())?;
        let mut args = vec![
            CString::new("pelagos-launch")?,
            CString::new("--exec")?,
            path,
        ];
        match hook.args().as_deref() {
            Some([first, rest @ ..]) => {
                args.push(CString::new(first.as_bytes())?);
                for a in rest {
                    args.push(CString::new(a.as_bytes())?);
                }
            }
            _ => args.push(CString::new(hook.path().as_os_str().as_bytes())?),
        }
        let env: Vec<CString> = match hook.env() {
            Some(env) => env
                .iter()
                .map(|kv| CString::new(kv.as_bytes()))
                .collect::<std::result::Result<_, _>>()?,
            None => std::env::vars_os()
                .map(|(k, v)| {
                    let mut kv = k.into_vec();
                    kv.push(b'=');
                    kv.extend(v.into_vec());
                    CString::new(kv)
                })
                .collect::<std::result::Result<_, _>>()?,
        };
        let nul = std::iter::once(std::ptr::null());
        let argv = args.iter().map(|a| a.as_ptr()).chain(nul.clone()).collect();
        let envp = env.iter().map(|e| e.as_ptr()).chain(nul).collect();
        let mut strings = args;
        strings.extend(env);
        Ok(StubExec {
            _strings: strings,
            argv,
            envp,
        })
    }

    /// In the forked child: execveat the stub; returns only on failure.
    fn exec(&self, stub: RawFd) -> std::io::Result<()> {
        // SAFETY: argv/envp are NULL-terminated arrays of strings owned by self, alive here.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                stub,
                c"".as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        Err(std::io::Error::last_os_error())
    }
}

// SAFETY: the raw pointers point into `_strings`, owned by the same value and never mutated;
// std's pre_exec closure must be Send + Sync.
unsafe impl Send for StubExec {}
// SAFETY: as above: read-only.
unsafe impl Sync for StubExec {}

/// Run each hook in order; the first failure stops the list and is returned.
pub fn run_all(hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for hook in hooks {
        run(hook, state_json)?;
    }
    Ok(())
}

/// Run each hook; failures are only warned about (poststop).
pub fn run_all_warn(hooks: &[Hook], state_json: &[u8], warn: &mut dyn FnMut(String)) {
    for hook in hooks {
        if let Err(e) = run(hook, state_json) {
            warn(e.to_string());
        }
    }
}

/// Run hooks from the container's init (createContainer, startContainer): the hook's process is
/// a fork of the init, so it execs through the sealed launch stub, never as a copy of the
/// runtime (a hook file in the container naming `#!/proc/self/exe` must not run the runtime's
/// binary there: CVE-2019-5736).
pub fn run_all_in_container(hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    let stub = crate::init::launch::launch_stub()?;
    for hook in hooks {
        run_with(hook, state_json, Some(stub))?;
    }
    Ok(())
}

pub fn run(hook: &Hook, state_json: &[u8]) -> Result<()> {
    run_with(hook, state_json, None)
}

fn run_with(hook: &Hook, state_json: &[u8], stub: Option<RawFd>) -> Result<()> {
    let path = hook.path();
    let fail = |reason: String| Error::Hook {
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(path);
    if let Some(stub) = stub {
        let exec = StubExec::new(hook).map_err(|e| fail(e.to_string()))?;
        // SAFETY: the closure runs in the forked child before exec; it only calls execveat
        // with strings built before the fork (the init is single-threaded).
        unsafe { cmd.pre_exec(move || exec.exec(stub)) };
    }
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    // No `env` at all: the hook inherits the runtime's environment (runc and crun do so, and
    // hooks such as nvidia-container-runtime-hook rely on PATH from it). An `env`, even an
    // empty one, is the hook's whole environment.
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped());
    // A hook's stdout goes to our stderr: our stdout may be the container's output (`run`) or
    // a caller's protocol, and a hook must not write into either.
    let to_stderr = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    cmd.stdout(to_stderr).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("{status}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(e.to_string())),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {} s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn hook_gets_state_on_stdin_and_env() {
        let out = std::env::temp_dir().join(format!("pelagos-hook-{}", std::process::id()));
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("cat > {0}; echo \" $FOO\" >> {0}", out.display()),
            ])
            .env(vec!["FOO=bar".to_string()])
            .build()
            .unwrap();
        run(&hook, br#"{"id":"x"}"#).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(text, "{\"id\":\"x\"} bar\n");
    }

    #[test]
    fn hook_without_env_inherits_ours_and_an_empty_env_is_empty() {
        // cargo sets CARGO_PKG_NAME for the test process; sh gives it no default of its own
        // (as it does PATH).
        let ours = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
        assert!(
            !ours.is_empty(),
            "run under cargo test: CARGO_PKG_NAME is not set"
        );
        let run_printing_var = |env: Option<Vec<String>>, tag: &str| {
            let out =
                std::env::temp_dir().join(format!("pelagos-hook-env-{tag}-{}", std::process::id()));
            let mut b = HookBuilder::default().path("/bin/sh").args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!(
                    "printf %s \"${{CARGO_PKG_NAME-unset}}\" > {}",
                    out.display()
                ),
            ]);
            if let Some(env) = env {
                b = b.env(env);
            }
            run(&b.build().unwrap(), b"{}").unwrap();
            let text = std::fs::read_to_string(&out).unwrap();
            std::fs::remove_file(&out).unwrap();
            text
        };
        assert_eq!(run_printing_var(None, "inherit"), ours);
        assert_eq!(run_printing_var(Some(vec![]), "empty"), "unset");
    }

    #[test]
    fn failing_and_slow_hooks_are_errors() {
        let hook = HookBuilder::default().path("/bin/false").build().unwrap();
        assert!(run(&hook, b"{}")
            .unwrap_err()
            .to_string()
            .contains("/bin/false"));
        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".to_string(), "5".to_string()])
            .timeout(1i64)
            .build()
            .unwrap();
        let start = Instant::now();
        let err = run(&slow, b"{}").unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(4));
        let missing = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        assert!(run(&missing, b"{}").is_err());
    }
}
