use clap::Parser;

fn main() {
    let cli = zkdev::cli::Cli::parse();
    // The supervisor forks into the background before any thread exists (a runtime must not be forked).
    if let zkdev::cli::Cmd::Supervise { detach: true } = cli.command {
        if let Err(e) = zkdev::supervisor::detach() {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
    // Two workers: `verify` writes on one while the other kills and restarts nodes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    if let Err(e) = runtime.block_on(zkdev::commands::run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
