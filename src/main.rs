//! The `hptop` binary: parse the command line, run, map errors to a message and exit code.

use clap::Parser;

fn main() {
    // The --blocking pause helper (see collect::pause): internal, not part of the CLI.
    let args: Vec<String> = std::env::args().collect();
    if let [_, word, pid, parent] = &args[..] {
        if word == hptop::collect::pause::HELPER_ARG {
            std::process::exit(hptop::collect::pause::helper_main(pid, parent));
        }
    }
    let cli = hptop::cli::Cli::parse();
    let subcommand = cli.subcommand();
    if let Err(e) = hptop::run(cli) {
        eprintln!("hptop: error: {e}");
        for line in e.fix_in(subcommand).lines() {
            eprintln!("  {line}");
        }
        std::process::exit(e.exit_code());
    }
}
