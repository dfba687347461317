//! The `switchboard` binary: parse the command line, build, run.

use clap::{Parser, Subcommand};
use switchboard::config::SettingsArgs;
use switchboard::demo::DemoArgs;
use switchboard::{server, telemetry};

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
    /// A throwaway Redis, example agents, a server, and a call you can place.
    Demo(DemoArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            settings,
            no_worker,
        } => {
            let settings = settings.into_settings()?;
            telemetry::init(settings.log_format);
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
            let _ = no_worker;
            let listener = tokio::net::TcpListener::bind(settings.listen).await?;
            tracing::info!(listen = %listener.local_addr()?, "serving");
            let state = server::build_state(settings)?;
            server::warm_up(&state).await;
            server::serve(listener, state, server::shutdown_signal()).await?;
            Ok(())
        }
        Command::Demo(args) => {
            telemetry::init(switchboard::config::LogFormat::Pretty);
            switchboard::demo::run(args).await
        }
    }
}
