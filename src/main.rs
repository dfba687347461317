//! The `switchboard` binary: parse the command line, build, run.

use std::io::Write as _;

use clap::{Parser, Subcommand};
use switchboard::config::{Settings, SettingsArgs};
use switchboard::demo::DemoArgs;
use switchboard::http::listener;
use switchboard::simulate::SimulateArgs;
use switchboard::{server, telemetry};

// With glibc's malloc, a thousand open event streams made every webhook
// spend about 30 % more CPU, most of it in malloc itself (`_int_malloc`,
// `malloc_consolidate`, around the connections' long-lived buffers); with
// jemalloc what is left (about a seventh) is delivering the events
// (`cargo bench --bench event_streams`). It also gives freed pages back: the
// scale bench ends at 20 MB RSS against 33 MB. Not on MSVC targets, which
// tikv-jemallocator does not build for.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Inbound-call router for Twilio"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The webhook and admin HTTP server.
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Do not run the background worker in this process.
        #[arg(long)]
        no_worker: bool,
    },
    /// The background worker alone: expiry sweeps and gauges (serves /healthz,
    /// /readyz and /metrics on the listen address).
    Worker {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// The roster: apply an agents file to Redis.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// A throwaway Redis, example agents, a server, and a call you can place.
    Demo(DemoArgs),
    /// A Twilio stand-in: places signed calls, follows the TwiML, reports.
    Simulate(SimulateArgs),
    /// Print the admin API's OpenAPI document (as served at /v1/openapi.json by
    /// a server with the same routing file).
    Openapi {
        /// Routing file whose queue names the document lists; default: built-in.
        #[arg(long, env = "SWITCHBOARD_ROUTING")]
        routing: Option<std::path::PathBuf>,
    },
}

const LISTEN: &str = "SWITCHBOARD_LISTEN / --listen";
const OPS_LISTEN: &str = "SWITCHBOARD_OPS_LISTEN / --ops-listen";

/// Binds `addr`; a failure names the address and the setting that chose it
/// (a port in use is the usual one: another switchboard still running).
fn bind(addr: std::net::SocketAddr, setting: &str) -> anyhow::Result<tokio::net::TcpListener> {
    listener::bind(addr).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            ": another process listens there; stop it or choose another address"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr} ({setting}): {e}{hint}")
    })
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// Create, update (never the live state) and, with --prune, delete agents
    /// so that Redis holds the file's roster; prints what changed. Safe to run
    /// again: an unchanged file writes nothing.
    Import(switchboard::roster::ImportArgs),
}

/// What `into_settings` found odd, now that logging is up.
fn log_warnings(settings: &Settings) {
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
}

/// Errors end the process with their message (and causes) on stderr and exit
/// code 1. Not `main() -> Result`: that prints `Debug`, with a backtrace when
/// `RUST_BACKTRACE` is set, which is noise for a mistake in a setting.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            say(format_args!(
                "switchboard: cannot start the async runtime: {e}"
            ));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("switchboard: {e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// A line on stderr, if stderr takes it: `eprintln!` panics on a closed
/// stderr, which would turn exit code 1 into 101.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            settings,
            no_worker,
        } => {
            let mut settings = settings.into_settings()?;
            let _log = telemetry::init(settings.log_format);
            log_warnings(&settings);
            if settings.twilio_auth_token.is_none() && !settings.skip_signature {
                anyhow::bail!("TWILIO_AUTH_TOKEN is not set: serve refuses to start without it");
            }
            if settings.skip_signature {
                tracing::warn!(
                    "SWITCHBOARD_SKIP_SIGNATURE is on: webhooks are not authenticated (development only)"
                );
            }
            if settings.admin_token.is_none() {
                tracing::warn!("SWITCHBOARD_ADMIN_TOKEN is not set: the admin API /v1 answers 503");
            }
            let listener = bind(settings.listen, LISTEN)?;
            let ops = match settings.ops_listen {
                Some(addr) => Some(bind(addr, OPS_LISTEN)?),
                None => None,
            };
            match &ops {
                Some(ops) => tracing::info!(
                    listen = %listener.local_addr()?,
                    ops_listen = %ops.local_addr()?,
                    worker = !no_worker,
                    "serving (/metrics on the ops listen address only)"
                ),
                None => tracing::info!(
                    listen = %listener.local_addr()?,
                    worker = !no_worker,
                    backlog = listener::backlog(),
                    "serving"
                ),
            }
            let listeners = 1 + u64::from(ops.is_some());
            match listener::raise_open_files(&settings.connections, listeners) {
                Ok((limit, wanted)) => {
                    let held = listener::held_room(&settings.connections, listeners, limit);
                    if limit < wanted {
                        tracing::warn!(
                            limit,
                            wanted,
                            held,
                            "the open-file limit (ulimit -n, its hard limit) is below what SWITCHBOARD_MAX_CONNECTIONS may need: at most `held` connections past a peer's share are held, the rest reset at once"
                        );
                    }
                    settings.connections.max_held = held;
                }
                Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
            }
            let state = server::build_state(settings)?;
            server::warm_up(&state).await;
            let stop = server::shutdown_on_signal();
            server::run_with_ops(listener, ops, state, !no_worker, stop).await?;
            Ok(())
        }
        Command::Worker { settings } => {
            let settings = settings.into_settings()?;
            let _log = telemetry::init(settings.log_format);
            log_warnings(&settings);
            // The worker serves only operations endpoints: on the ops
            // address when one is set, so one setting fits serve and worker.
            let listener = match settings.ops_listen {
                Some(addr) => bind(addr, OPS_LISTEN)?,
                None => bind(settings.listen, LISTEN)?,
            };
            tracing::info!(listen = %listener.local_addr()?, "worker serving /healthz, /readyz, /metrics");
            let state = server::build_state(settings)?;
            server::warm_up(&state).await;
            server::run_worker(listener, state, server::shutdown_on_signal()).await?;
            Ok(())
        }
        Command::Agents {
            command: AgentsCommand::Import(args),
        } => {
            let report = switchboard::roster::import(args).await?;
            // Not `print!`: it panics on a closed stdout (`agents import … |
            // head`), after the import is done.
            let _ = write!(std::io::stdout().lock(), "{report}");
            Ok(())
        }
        // It starts logging itself, once its instructions are printed.
        Command::Demo(args) => switchboard::demo::run(args).await,
        Command::Openapi { routing } => {
            let table = match routing {
                Some(path) => switchboard::config::RoutingTable::load(&path)?,
                None => switchboard::config::RoutingTable::builtin(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&switchboard::api::document(&table))?
            );
            Ok(())
        }
        Command::Simulate(args) => {
            let report = switchboard::simulate::run(&args).await?;
            report.print(args.json);
            if report.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
