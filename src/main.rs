use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = plumb::cli::Cli::parse();
    plumb::cli::init_logging(&cli.global);
    match plumb::cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(plumb::cli::EXIT_ERROR)
        }
    }
}
