//! `run`'s flags → the engine's typed create request, parsed and validated before anything
//! is pulled or created (the model's `RunFlags` does the parsing with Docker's syntax and
//! error texts; this file only reads the CLI's environment: env files, cwd, `-e KEY` values).

use anyhow::{Context, Result};
use pelagos_engine::container::create::CreateRequest;
use pelagos_model::flags::HealthFlags;
use pelagos_model::run_flags::RunFlags;

use crate::cli::RunArgs;

/// The create request `run` makes.
pub fn create_request(a: &RunArgs) -> Result<CreateRequest> {
    let mut env_file_lines = Vec::new();
    let lookup = |k: &str| std::env::var(k).ok();
    for f in &a.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("read env file {}", f.display()))?;
        env_file_lines.extend(pelagos_model::flags::env_file(
            &f.to_string_lossy(),
            &text,
            &lookup,
        )?);
    }
    let flags = RunFlags {
        image: a.image().to_string(),
        command: a.command().to_vec(),
        entrypoint: a.entrypoint.clone(),
        env_file_lines,
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        labels: a.labels.clone(),
        interactive: a.interactive,
        tty: a.tty,
        detach: a.detach,
        rm: a.rm,
        read_only: a.read_only,
        privileged: a.privileged,
        init: a.init,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        security_opt: a.security_opt.clone(),
        network: a.network.clone(),
        ip: a.ip.clone(),
        ip6: a.ip6.clone(),
        network_aliases: a.network_aliases.clone(),
        mac_address: a.mac_address.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        volumes: a.volumes.clone(),
        mounts: a.mounts.clone(),
        tmpfs: a.tmpfs.clone(),
        ulimits: a.ulimits.clone(),
        shm_size: a.shm_size.clone(),
        memory: a.memory.clone(),
        memory_swap: a.memory_swap.clone(),
        cpus: a.cpus.clone(),
        cpu_shares: a.cpu_shares.map(|c| c as i64),
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        restart: a.restart.clone(),
        log_driver: a.log_driver.clone(),
        log_opts: a.log_opts.clone(),
        health: HealthFlags {
            cmd: a.health_cmd.clone(),
            interval: a.health_interval.clone(),
            timeout: a.health_timeout.clone(),
            start_period: a.health_start_period.clone(),
            retries: a.health_retries,
            no_healthcheck: a.no_healthcheck,
        },
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        cgroup_parent: Some(a.cgroup_parent.clone()),
        cidfile: a.cidfile.as_ref().map(|f| f.to_string_lossy().into_owned()),
        devices: a.devices.clone(),
        group_add: a.group_add.clone(),
        sysctls: a.sysctls.clone(),
        pid: a.pid.clone(),
        ipc: a.ipc.clone(),
        uts: a.uts.clone(),
        add_hosts: a.add_hosts.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_options.clone(),
        ..RunFlags::default()
    };
    let cwd = std::env::current_dir().context("the current directory")?;
    let (config, host_config) = flags.to_config(&cwd, &lookup)?;
    let networking = flags.networking_config(&config, &host_config)?;
    Ok(CreateRequest {
        name: a.name.clone(),
        image_name: a.image().to_string(),
        config,
        host_config,
        networking,
    })
}
