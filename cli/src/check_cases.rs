//! `livecheck check-cases PATH`: reads case files as `serve` would, and says what is wrong (file, line, what) or
//! what each declares, without running anything.

use std::{path::PathBuf, process::ExitCode};

use clap::Args;

/// What `check-cases` takes.
#[derive(Args, Debug)]
pub(crate) struct CheckCasesArgs {
    /// A case file (.yaml, .yml, .toml), or a directory of them.
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

/// Exit 0 when every file is valid, 1 when one is not (the error on stderr, `FILE:LINE:COLUMN: what`).
pub(crate) fn run(args: &CheckCasesArgs) -> ExitCode {
    match livecheck::declare::load(&args.path) {
        Ok(cases) => {
            for case in &cases {
                let definition = &case.definition;
                println!(
                    "{}: case {} ok — signals {}",
                    case.path.display(),
                    definition.name(),
                    definition.signal_names().join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("livecheck: {error}");
            ExitCode::from(1)
        }
    }
}
