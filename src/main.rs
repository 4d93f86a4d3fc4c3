//! The `hptop` binary: parse the command line, run, map errors to a message and exit code.

use clap::Parser;

fn main() {
    let cli = hptop::cli::Cli::parse();
    if let Err(e) = hptop::run(cli) {
        eprintln!("hptop: error: {e}");
        for line in e.fix().lines() {
            eprintln!("  {line}");
        }
        std::process::exit(e.exit_code());
    }
}
