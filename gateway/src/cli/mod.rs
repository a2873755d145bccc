//! The command line: `serve`, `ingest`, `dead-letters` and `plugin`.

mod dead_letters;
mod ingest;
mod lake;
mod plugin;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
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
    /// Run the gateway: gRPC ingest into the lake, until SIGINT or SIGTERM.
    Serve {
        /// gRPC address (default 127.0.0.1:50051).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The lake directory (default ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        /// Prometheus metrics address (default 127.0.0.1:9464).
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Directory of plugin components (default: next to the binary).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
        /// TOML configuration (see examples/lakegate.toml); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Stream log files to a gateway and report what it acknowledged.
    Ingest(ingest::IngestArgs),
    /// Look at a lake.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Work with the dead-letter area of a lake.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Debug, Subcommand)]
enum LakeCommand {
    /// Tables, files, partitions and rows (from the Parquet footers), and dead letters.
    Summary {
        #[arg(long, default_value = "lake")]
        lake: PathBuf,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterCommand {
    /// List dead letters not yet replayed.
    List {
        #[arg(long, default_value = "lake")]
        lake: PathBuf,
        #[arg(long)]
        source: Option<String>,
        /// Every letter as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters through their source's current plugin on a running gateway.
    Replay {
        #[arg(long, default_value = "lake")]
        lake: PathBuf,
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
    },
}

/// Runs a parsed command line; the exit code says whether it found problems.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plugin(command) => plugin::run(&host(&cli.sandbox)?, command),
        Command::Serve {
            listen,
            lake,
            metrics_listen,
            plugin_dir,
            config,
        } => {
            let mut config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            config.listen = listen.unwrap_or(config.listen);
            config.lake = lake.unwrap_or(config.lake);
            config.metrics_listen = metrics_listen.or(config.metrics_listen);
            config.plugin_dir = plugin_dir.or(config.plugin_dir);
            crate::server::serve(config, host(&cli.sandbox)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(args) => ingest::run(args),
        Command::Lake(LakeCommand::Summary { lake, json }) => lake::summary(&lake, json),
        Command::DeadLetters(DeadLetterCommand::List { lake, source, json }) => {
            dead_letters::list(&lake, source.as_deref(), json)
        }
        Command::DeadLetters(DeadLetterCommand::Replay {
            lake,
            source,
            server,
        }) => dead_letters::replay(&lake, source.as_deref(), &server),
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
