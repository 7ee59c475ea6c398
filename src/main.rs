use clap::Parser;

fn main() {
    let cli = zkdev::cli::Cli::parse();
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
