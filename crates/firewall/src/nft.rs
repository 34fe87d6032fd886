//! Running `nft`: one JSON batch per call on its standard input (`nft -j -f -`: one
//! kernel transaction, all or nothing), or a listing of the table; failures carry nft's
//! standard error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nftables::schema::Nftables;

use crate::error::{Error, Result};
use crate::layout::{Obj, TABLE};
use crate::listing::Listing;

/// Where `nft` is looked for when it is not on `PATH` (a monitor may run with a short one).
const SBIN_DIRS: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// The `nft` program.
#[derive(Debug, Clone)]
pub(crate) struct Nft {
    program: PathBuf,
}

impl Nft {
    /// `nft` from `PATH`, else from the usual sbin directories.
    pub fn find() -> Nft {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::env::split_paths(&path).chain(SBIN_DIRS.iter().map(PathBuf::from));
        let program = dirs.map(|d| d.join("nft")).find(|p| p.is_file());
        Nft {
            program: program.unwrap_or_else(|| PathBuf::from("nft")),
        }
    }

    /// A given `nft` program.
    pub fn at(program: PathBuf) -> Nft {
        Nft { program }
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Applies `commands` as one transaction; nothing is run for none.
    pub fn apply(&self, action: &str, commands: Vec<Obj>) -> Result<()> {
        if commands.is_empty() {
            return Ok(());
        }
        let batch = Nftables {
            objects: commands.into(),
        };
        let input = serde_json::to_vec(&batch).map_err(|e| Error::Nft {
            action: action.to_owned(),
            stderr: format!("cannot write the JSON batch: {e}"),
        })?;
        let output = self.run(&["-j", "-f", "-"], Some(&input))?;
        check(action, &output)
    }

    /// The table's contents, `None` if it does not exist.
    pub fn list(&self) -> Result<Option<Listing>> {
        let output = self.run(&["-j", "list", "table", "inet", TABLE], None)?;
        if !output.status.success() && is_missing_table(&output) {
            return Ok(None);
        }
        check("listing table inet pelagos", &output)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        Listing::parse(&stdout).map(Some)
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            // nft reads its whole input before it writes anything: no deadlock. A program
            // that exits without reading it is judged by its exit status below.
            match stdin.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(self.spawn_error(e))
                }
                _ => {}
            }
        }
        child.wait_with_output().map_err(|e| self.spawn_error(e))
    }

    fn spawn_error(&self, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NftMissing {
                program: self.program.clone(),
            }
        } else {
            Error::Spawn {
                program: self.program.clone(),
                source,
            }
        }
    }
}

fn check(action: &str, output: &Output) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stderr = if stderr.is_empty() {
        format!("nft exited with {}", output.status)
    } else {
        stderr
    };
    Err(Error::Nft {
        action: action.to_owned(),
        stderr,
    })
}

/// Whether a failed listing failed because the table does not exist: nft prints the
/// kernel's ENOENT as its strerror text, the only sign it gives.
fn is_missing_table(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("No such file or directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nft_is_a_clear_error() {
        let nft = Nft::at(PathBuf::from("/nonexistent/nft"));
        let err = nft.list().unwrap_err();
        assert!(matches!(err, Error::NftMissing { .. }), "{err}");
        let err = nft
            .apply("testing", crate::layout::delete_table())
            .unwrap_err();
        assert!(err.to_string().contains("install nftables"), "{err}");
    }

    #[test]
    fn nothing_to_do_runs_nothing() {
        Nft::at(PathBuf::from("/nonexistent/nft"))
            .apply("nothing", Vec::new())
            .unwrap();
    }

    #[test]
    fn failures_carry_stderr() {
        // sh refuses nft's `-j` on its standard error.
        let err = Nft::at(PathBuf::from("/bin/sh")).apply("testing", crate::layout::delete_table());
        let text = err.unwrap_err().to_string();
        assert!(
            text.contains("while testing") && text.contains("-j"),
            "{text}"
        );
        let err = Nft::at(PathBuf::from("/bin/false")).list().unwrap_err();
        assert!(err.to_string().contains("exited with"), "{err}");
    }
}
