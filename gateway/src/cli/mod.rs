//! The command line: `lakegate plugin test` and `lakegate plugin inspect`.

mod plugin;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::host::{Host, Limits};

/// Amazon Security Lake gateway with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "lakegate", version)]
pub struct Cli {
    /// Write logs as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where compiled plugins are cached and the limits they run under.
#[derive(Debug, Args)]
struct SandboxArgs {
    /// Directory for compiled plugins (compiled once per plugin hash and wasmtime version).
    #[arg(long, global = true, env = "LAKEGATE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Wall-clock deadline of one plugin call (one batch), in milliseconds.
    #[arg(long, global = true, default_value_t = 2000)]
    deadline_ms: u64,
    /// Memory cap of one plugin instance, in MiB.
    #[arg(long, global = true, default_value_t = 256)]
    memory_mib: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Runs a parsed command line; the exit code says whether it found problems.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let host = host(&cli.sandbox)?;
    match cli.command {
        Command::Plugin(command) => plugin::run(&host, command),
    }
}

fn host(args: &SandboxArgs) -> anyhow::Result<Host> {
    let cache_dir = args.cache_dir.clone().or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("lakegate/compiled"))
    });
    let limits = Limits {
        deadline: Duration::from_millis(args.deadline_ms),
        memory_bytes: args.memory_mib << 20,
    };
    Ok(Host::new(limits, cache_dir)?)
}
