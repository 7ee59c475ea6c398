use clap::Parser;

fn main() {
    let cli = zkdev::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    if let Err(e) = runtime.block_on(zkdev::commands::run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
