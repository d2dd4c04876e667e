//! `ims-callback serve` (also the default with no subcommand): the FC
//! custom-runtime HTTP server; under AWS Lambda (`AWS_LAMBDA_RUNTIME_API`
//! set) the Lambda runtime instead.

use super::EXIT_IO;
use ims_callback::configuration::Settings;
use ims_callback::server::Application;
use ims_callback::telemetry::LogWriter;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments of `serve`; the environment supplies the rest (see README).
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Listen address (overrides IMS_LISTEN and FC_CUSTOM_LISTEN_PORT).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Store (overrides IMS_STORE).
    #[arg(long)]
    store: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    // Held to the end of `run`: dropping it writes out the queued log lines.
    let _log = ims_callback::telemetry::init(if ims_callback::lambda::is_lambda() {
        LogWriter::Direct
    } else {
        LogWriter::Background
    });
    let mut settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            tracing::error!(error = %e, "invalid settings");
            if ims_callback::lambda::is_lambda() {
                // Tell Lambda why the function cannot start.
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(ims_callback::lambda::report_init_error(
                        "InvalidSetting",
                        &e.to_string(),
                    ));
                }
            }
            return ExitCode::from(EXIT_IO);
        }
    };
    if let Some(addr) = args.addr {
        settings.listen = addr;
    }
    if let Some(store) = args.store {
        settings.store = store;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    if ims_callback::lambda::is_lambda() {
        return runtime.block_on(async {
            match ims_callback::lambda::run_with_settings(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "lambda runtime failed");
                    ExitCode::from(EXIT_IO)
                }
            }
        });
    }
    runtime.block_on(async {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("error: {e}");
                tracing::error!(error = %e, "startup failed");
                return ExitCode::from(EXIT_IO);
            }
        };
        match app.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::from(EXIT_IO)
            }
        }
    })
}
