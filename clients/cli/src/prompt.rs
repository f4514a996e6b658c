//! Reading secrets: prompts on the terminal without echo, or lines from stdin for scripts.
//! Nothing read here is ever printed.

use std::io::{self, BufRead, IsTerminal};

use crate::error::CliError;

/// Whether prompts can be shown: stdin is a terminal.
pub(crate) fn interactive() -> bool {
    io::stdin().is_terminal()
}

/// Prompts on the terminal and reads an answer without echoing it.
pub(crate) fn secret(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(CliError::Prompt)
}

/// Prompts for a new password twice and checks that both agree and it is not empty.
pub(crate) fn new_password() -> Result<String, CliError> {
    let first = secret("新しいパスワード New password: ")?;
    if first.is_empty() {
        return Err(empty_password());
    }
    let second = secret("もう一度 Repeat: ")?;
    if first != second {
        return Err(CliError::Input {
            ja: "パスワードが一致しません。",
            en: "The passwords do not match.",
        });
    }
    Ok(first)
}

fn empty_password() -> CliError {
    CliError::Input {
        ja: "パスワードが空です。",
        en: "The password is empty.",
    }
}

/// Lines read one by one from stdin (for `--password-stdin` and `--stdin`).
#[derive(Debug)]
pub(crate) struct StdinLines<R> {
    reader: R,
}

impl StdinLines<io::StdinLock<'static>> {
    /// Reads the process's stdin.
    pub(crate) fn stdin() -> Self {
        Self {
            reader: io::stdin().lock(),
        }
    }
}

impl<R: BufRead> StdinLines<R> {
    /// Reads from `reader` (tests).
    #[cfg(test)]
    pub(crate) fn new(reader: R) -> Self {
        Self { reader }
    }

    /// The next line without its line ending (`\n` or `\r\n`); other whitespace is kept, as it
    /// may be part of a password. A missing or empty line is an error naming `what`.
    pub(crate) fn password(&mut self, what: &'static str) -> Result<String, CliError> {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .map_err(|source| CliError::Io {
                what: format!("could not read the {what} from stdin"),
                source,
            })?;
        if read == 0 {
            return Err(CliError::Input {
                ja: "標準入力に必要な行がありません。",
                en: "stdin ended before all expected lines were read.",
            });
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        if line.is_empty() {
            return Err(empty_password());
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_keeping_inner_whitespace() {
        let mut lines = StdinLines::new(&b" old pass \r\nnew pass\n"[..]);
        assert_eq!(lines.password("current password").unwrap(), " old pass ");
        assert_eq!(lines.password("new password").unwrap(), "new pass");
        assert!(matches!(lines.password("x"), Err(CliError::Input { .. })));
    }

    #[test]
    fn accepts_a_last_line_without_newline_and_rejects_empty_ones() {
        let mut lines = StdinLines::new(&b"secret"[..]);
        assert_eq!(lines.password("password").unwrap(), "secret");
        let mut lines = StdinLines::new(&b"\n"[..]);
        assert!(matches!(
            lines.password("password"),
            Err(CliError::Input { .. })
        ));
    }
}
