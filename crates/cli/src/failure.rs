//! How a failed command reads and exits, as Docker's CLI: the engine's errors (pelagos's
//! daemon side) as `Error response from daemon: …`, the CLI's own as their text, `run`'s with
//! its help line; codes from error kinds (never from text).

use pelagos_model::ErrorKind;

use crate::cli::{Cli, ContainerVerb};

/// `docker run`'s exit code when the container could not be created or started.
pub const EXIT_RUN_FAILED: i32 = 125;

/// An error already in Docker's words, printed as it is, with its exit code (Docker's CLI
/// makes some checks itself, such as attach's "You cannot attach to a stopped container").
#[derive(Debug)]
pub struct Plain {
    pub text: String,
    pub code: i32,
}

impl std::fmt::Display for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Plain {}

impl Plain {
    pub fn new(text: impl Into<String>, code: i32) -> Plain {
        Plain {
            text: text.into(),
            code,
        }
    }
}

/// The text (ending in a newline) and exit code for a failed command.
pub fn render(cli: &Cli, command_path: &str, e: &anyhow::Error) -> (String, i32) {
    if let Some(p) = e.chain().find_map(|c| c.downcast_ref::<Plain>()) {
        return (format!("{}\n", p.text), p.code);
    }
    let text = match daemon_message(e) {
        Some(m) => format!("Error response from daemon: {m}"),
        // The CLI's own errors read as Docker's CLI prints its own: the text alone.
        None => format!("{e:#}"),
    };
    let kind = kind_of(e);
    match cli.container_verb() {
        Some(ContainerVerb::Run(_)) => (
            format!(
                "pelagos: {text}\n\nRun 'pelagos {command_path} --help' for more information\n"
            ),
            kind.map(pelagos_model::kind::exit_code)
                .unwrap_or(EXIT_RUN_FAILED),
        ),
        // Docker's exec reports a command that cannot start as 126, found or not.
        Some(ContainerVerb::Exec(a)) if !a.detach && is_exec_failure(kind) => (text + "\n", 126),
        _ => (text + "\n", 1),
    }
}

fn is_exec_failure(kind: Option<ErrorKind>) -> bool {
    matches!(
        kind,
        Some(ErrorKind::NotExecutable | ErrorKind::ExecutableNotFound)
    )
}

/// The message from the first typed error of the chain on (the CLI's own context above it
/// is not the daemon's), each cause once.
fn daemon_message(e: &anyhow::Error) -> Option<String> {
    let mut causes = e.chain().skip_while(|c| typed_kind(*c).is_none());
    let mut text = causes.next()?.to_string();
    for cause in causes {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
    }
    Some(text)
}

/// The kind of an error from the engine, the model or the runtime core.
pub fn kind_of(e: &anyhow::Error) -> Option<ErrorKind> {
    e.chain().find_map(typed_kind)
}

fn typed_kind(cause: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if let Some(e) = cause.downcast_ref::<pelagos_engine::Error>() {
        Some(e.kind())
    } else if let Some(e) = cause.downcast_ref::<pelagos_model::Error>() {
        Some(e.kind())
    } else {
        cause
            .downcast_ref::<pelagos_container::Error>()
            .map(|e| e.kind())
    }
}
