//! `tsunagu`: the command-line client of Tsunagu. Log in, manage your sessions, password and
//! two-factor authentication, open patient rooms, invite the care team, record the patient's
//! consent, post to a room's timeline, read and follow it, acknowledge, correct and delete
//! posts, administer organisations, invitations and users, and (security officers) search,
//! report on, export and verify the audit trail.
//!
//! This file only parses the command line, runs the command on a Tokio runtime and turns the
//! outcome into an exit code. The modules:
//!
//! * `cli`: the clap command definitions;
//! * `commands`: running them (`auth` for the account, `admin` for administration, `rooms`
//!   for patient rooms and the directory, `timeline` for posts and the timeline, `audit`
//!   for the security officers' tools);
//! * `credentials`: the stored login, `<config-dir>/credentials.toml` (mode 0600);
//! * `output`: human-readable and `--json` rendering, and error reports;
//! * `prompt`: reading passwords and codes;
//! * `error`: errors and exit codes.
//!
//! Exit codes (also listed by `tsunagu --help`):
//!
//! * 0: success
//! * 1: other error
//! * 2: usage error
//! * 3: not logged in, authentication failed, session expired or token invalid
//! * 4: forbidden, or a pending step (password change, TOTP enrolment) is required
//! * 5: not found
//! * 6: invalid input or conflict (`invalid_request`, `weak_password`, `conflict`,
//!   `invitation_invalid`)
//! * 7: server unreachable or unavailable
//! * 8: account locked or rate limited

mod cli;
mod commands;
mod credentials;
mod error;
mod output;
mod prompt;

use std::process::ExitCode;

use clap::Parser;

use crate::error::{CliError, exit};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            output::print_error(&CliError::Io {
                what: "could not start the async runtime".to_owned(),
                source,
            });
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::print_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
