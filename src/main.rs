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
    // The supervisor runs for the cluster's life on one thread (its work is waiting: fewer wake-ups across
    // threads, less CPU while idle). The commands get two workers: `verify` writes on one while the other
    // kills and restarts nodes.
    let runtime = if matches!(cli.command, zkdev::cli::Cmd::Supervise { .. }) {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("a tokio runtime starts");
    if let Err(e) = runtime.block_on(zkdev::commands::run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
