//! What the container's process is, with Docker's rules for merging the image's config and
//! the container's: command line, environment, hostname, working directory, user, stop signal.

use oci_spec::image::Config as ImageConfig;
use pelagos_model::config::{ContainerConfig, HostConfig};
use pelagos_model::validate::{network_mode, uts_mode, NamespaceMode, NetworkMode};
use pelagos_model::{Error, Result};

/// PATH when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init`'s program is bind-mounted (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Seconds `stop` waits by default.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// The command line: Docker's entrypoint/cmd rules. A container `Entrypoint` replaces the
/// image's and drops the image's `Cmd`; `[""]` clears it; a container `Cmd` replaces the
/// image's. Errors when nothing is left to run.
pub fn command_line(image: Option<&ImageConfig>, config: &ContainerConfig) -> Result<Vec<String>> {
    let image_entrypoint = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let user_cmd = config.cmd.clone().unwrap_or_default();
    let (entrypoint, cmd) = match &config.entrypoint {
        Some(e) if e.len() == 1 && e[0].is_empty() => (Vec::new(), user_cmd),
        Some(e) if !e.is_empty() => (e.clone(), user_cmd),
        // No entrypoint of its own: the image's Cmd unless the container has one.
        Some(_) | None => {
            let entrypoint = if config.entrypoint.is_some() {
                Vec::new()
            } else {
                image_entrypoint
            };
            let cmd = if user_cmd.is_empty() {
                image_cmd
            } else {
                user_cmd
            };
            (entrypoint, cmd)
        }
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has neither Entrypoint nor Cmd".into(),
        ));
    }
    Ok(args)
}

/// The process's arguments: the command line, behind the init with `--init`.
pub fn process_args(
    image: Option<&ImageConfig>,
    config: &ContainerConfig,
    host: &HostConfig,
) -> Result<Vec<String>> {
    let args = command_line(image, config)?;
    if host.init != Some(true) {
        return Ok(args);
    }
    Ok([INIT_PATH.to_string(), "--".to_string()]
        .into_iter()
        .chain(args)
        .collect())
}

fn env_key(entry: &str) -> &str {
    entry.split('=').next().unwrap_or_default()
}

/// Docker's `ReplaceOrAppendEnvValues`: an override replaces the entry of the same key in
/// place or is appended; a bare `KEY` removes it.
pub fn replace_or_append(base: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut out = base;
    for o in overrides {
        let key = env_key(o);
        if !o.contains('=') {
            out.retain(|e| env_key(e) != key);
            continue;
        }
        match out.iter_mut().find(|e| env_key(e) == key) {
            Some(e) => e.clone_from(o),
            None => out.push(o.clone()),
        }
    }
    out
}

/// The container's environment: PATH, HOSTNAME, TERM with a tty, overridden by the image's
/// `Env`, overridden by the container's (Docker's order and rules).
pub fn environment(
    image: Option<&ImageConfig>,
    config: &ContainerConfig,
    hostname: &str,
) -> Vec<String> {
    let image_env = image.and_then(|c| c.env().clone()).unwrap_or_default();
    let merged = replace_or_append(image_env, &config.env);
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if config.tty {
        base.push("TERM=xterm".into());
    }
    replace_or_append(base, &merged)
}

/// The hostname: the config's, else the host's with the host's network or UTS namespace,
/// else the first 12 characters of the id (Docker's rules; with another container's UTS
/// namespace the kernel's name is that container's, /etc/hostname gets the id's).
pub fn hostname(config: &ContainerConfig, host: &HostConfig, id: &str) -> String {
    let short = id.get(..12).unwrap_or(id).to_string();
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    let shares_host = matches!(network_mode(config, host), Ok(NetworkMode::Host))
        || matches!(uts_mode(host), Ok(NamespaceMode::Host));
    if shares_host {
        return nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or(short);
    }
    short
}

/// The working directory: the config's, else the image's, else `/`.
pub fn working_dir(image: Option<&ImageConfig>, config: &ContainerConfig) -> String {
    let dir = Some(config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    pelagos_model::mounts::clean(&dir)
}

/// The user to resolve ([`crate::user::resolve`]): the config's, else the image's.
pub fn user(image: Option<&ImageConfig>, config: &ContainerConfig) -> String {
    if !config.user.is_empty() {
        return config.user.clone();
    }
    image.and_then(|c| c.user().clone()).unwrap_or_default()
}

/// The signal `stop` sends: the config's, else the image's, else SIGTERM.
pub fn stop_signal(image: Option<&ImageConfig>, config: &ContainerConfig) -> String {
    config
        .stop_signal
        .clone()
        .or_else(|| image.and_then(|c| c.stop_signal().clone()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".into())
}

/// Seconds `stop` waits before SIGKILL.
pub fn stop_timeout(config: &ContainerConfig) -> i64 {
    config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    pub(crate) fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut b = ConfigBuilder::default();
        if let Some(e) = entrypoint {
            b = b.entrypoint(strings(e));
        }
        if let Some(c) = cmd {
            b = b.cmd(strings(c));
        }
        b.env(strings(&["PATH=/bin", "A=image", "GONE=1"]))
            .build()
            .unwrap()
    }

    pub(crate) fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_follows_docker_rules() {
        let img = image(Some(&["/ep"]), Some(&["a", "b"]));
        let mut c = ContainerConfig::default();
        assert_eq!(
            command_line(Some(&img), &c).unwrap(),
            strings(&["/ep", "a", "b"])
        );
        c.cmd = Some(strings(&["x"]));
        assert_eq!(
            command_line(Some(&img), &c).unwrap(),
            strings(&["/ep", "x"])
        );
        c.cmd = None;
        c.entrypoint = Some(strings(&["/other"]));
        assert_eq!(command_line(Some(&img), &c).unwrap(), strings(&["/other"]));
        c.entrypoint = Some(strings(&[""]));
        c.cmd = Some(strings(&["sh", "-c", "true"]));
        assert_eq!(
            command_line(Some(&img), &c).unwrap(),
            strings(&["sh", "-c", "true"])
        );
        c.entrypoint = Some(Vec::new());
        c.cmd = None;
        assert_eq!(command_line(Some(&img), &c).unwrap(), strings(&["a", "b"]));
        let err = command_line(Some(&image(None, None)), &ContainerConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no command specified"), "{err}");
    }

    #[test]
    fn init_goes_first() {
        let img = image(None, Some(&["sh"]));
        let host = HostConfig {
            init: Some(true),
            ..Default::default()
        };
        let args = process_args(Some(&img), &ContainerConfig::default(), &host).unwrap();
        assert_eq!(args, strings(&[INIT_PATH, "--", "sh"]));
    }

    #[test]
    fn environment_merges_with_user_winning() {
        let img = image(None, Some(&["sh"]));
        let c = ContainerConfig {
            env: strings(&["A=user", "B=2", "GONE"]),
            tty: true,
            ..Default::default()
        };
        let env = environment(Some(&img), &c, "abc");
        assert_eq!(
            env,
            strings(&["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "A=user", "B=2"])
        );
        let plain = environment(None, &ContainerConfig::default(), "h");
        assert!(plain.contains(&format!("PATH={DEFAULT_PATH}")));
    }

    #[test]
    fn names_dirs_users_and_signals() {
        let id = "0123456789abcdef";
        let mut c = ContainerConfig::default();
        assert_eq!(hostname(&c, &HostConfig::default(), id), "0123456789ab");
        c.hostname = "web".into();
        assert_eq!(hostname(&c, &HostConfig::default(), id), "web");
        let img = ConfigBuilder::default()
            .working_dir("/srv/app/")
            .user("app")
            .stop_signal("SIGQUIT")
            .build()
            .unwrap();
        assert_eq!(working_dir(Some(&img), &c), "/srv/app");
        assert_eq!(working_dir(None, &c), "/");
        assert_eq!(user(Some(&img), &c), "app");
        assert_eq!(stop_signal(Some(&img), &c), "SIGQUIT");
        assert_eq!(stop_signal(None, &c), "SIGTERM");
        c.working_dir = "/w".into();
        c.user = "1000".into();
        c.stop_signal = Some("SIGUSR1".into());
        assert_eq!(working_dir(Some(&img), &c), "/w");
        assert_eq!(user(Some(&img), &c), "1000");
        assert_eq!(stop_signal(Some(&img), &c), "SIGUSR1");
        assert_eq!(stop_timeout(&c), 10);
    }
}
