//! The security officers' commands (`tsunagu audit …`) and `tsunagu clock`: search, export,
//! verification of the tamper-evident log, review reports and review sign-offs. The server
//! decides who may use them (security officers only) and records every use.
//!
//! An export is written to a new file that only its owner can read, never over an existing
//! file unless `--force`; the file is created before the export is asked for, so that an
//! export the server records is never thrown away for want of a place to put it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tsunagu_client::ClientError;
use tsunagu_protocol::audit::{AuditQuery, ReportKind, SignOffRequest};
use tsunagu_protocol::{ErrorBody, ErrorCode};

use super::Context;
use crate::cli::{
    AuditCommand, AuditExportArgs, AuditFilterArgs, AuditReportArgs, AuditSearchArgs,
    AuditSignOffArgs,
};
use crate::error::CliError;
use crate::output;

/// Runs one `tsunagu audit …` command.
pub(super) async fn run(ctx: &Context, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Search(args) => search(ctx, args).await,
        AuditCommand::Export(args) => export(ctx, args).await,
        AuditCommand::Verify => verify(ctx).await,
        AuditCommand::Report(args) => report(ctx, args).await,
        AuditCommand::SignOff(args) => sign_off(ctx, args).await,
        AuditCommand::Reviews => {
            let reviews = ctx.call(async |s| s.audit_reviews().await).await?;
            ctx.out().value(&reviews, || output::reviews(&reviews))
        }
    }
}

/// `tsunagu clock`.
pub(super) async fn clock(ctx: &Context) -> Result<(), CliError> {
    let clock = ctx.call(async |s| s.clock().await).await?;
    ctx.out().value(&clock, || output::clock_status(&clock))
}

/// The query for the filters given on the command line.
fn query(filters: AuditFilterArgs, limit: Option<u32>) -> AuditQuery {
    AuditQuery {
        user: filters.user,
        room: filters.room.map(|room| room.to_string()),
        action: filters.action,
        outcome: filters.outcome.map(|o| o.as_str().to_owned()),
        from: filters.from,
        until: filters.until,
        after: None,
        limit: limit.map(i64::from),
    }
}

/// `tsunagu audit search`: one page, or with `--all` every page (shown as one).
async fn search(ctx: &Context, args: AuditSearchArgs) -> Result<(), CliError> {
    let query = query(args.filters, args.limit);
    let all = args.all;
    let page = ctx
        .call(async |s| {
            let mut page = s.audit_search(&query).await?;
            while all && let Some(after) = page.next_after {
                let next = s
                    .audit_search(&AuditQuery {
                        after: Some(after),
                        ..query.clone()
                    })
                    .await?;
                // Pages continue after the last id: a page that does not move on ends it.
                let moved_on = next.next_after.is_none_or(|next| next > after);
                page.records.extend(next.records);
                page.next_after = next.next_after.filter(|_| moved_on);
            }
            Ok(page)
        })
        .await?;
    ctx.out().value(&page, || output::audit_page(&page))
}

/// What `tsunagu audit export -o FILE --json` prints.
#[derive(Debug, Serialize)]
struct Exported {
    path: PathBuf,
    format: &'static str,
    bytes: usize,
}

/// `tsunagu audit export`.
async fn export(ctx: &Context, args: AuditExportArgs) -> Result<(), CliError> {
    let format = args.format.as_str();
    let query = query(args.filters, args.limit);
    let path = args.output.filter(|path| path.as_os_str() != "-");
    let Some(path) = path else {
        let body = ctx
            .call(async |s| s.audit_export(&query, format).await)
            .await?;
        write_stdout(&body)?;
        output::stderr(&format!(
            "監査記録を書き出しました（{format}、{size}）。\n\
             Exported the audit records ({format}, {size}).\n",
            size = output::size(body.len() as u64)
        ));
        return Ok(());
    };
    let target = PrivateFile::create(&path, args.force)?;
    let body = match ctx
        .call(async |s| s.audit_export(&query, format).await)
        .await
    {
        Ok(body) => body,
        Err(error) => {
            target.discard();
            return Err(error);
        }
    };
    target.finish(&body)?;
    let exported = Exported {
        path,
        format,
        bytes: body.len(),
    };
    ctx.out().value(&exported, || {
        output::audit_exported(&exported.path, exported.format, exported.bytes)
    })
}

/// Writes bytes to stdout; a closed pipe (`… | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            what: "could not write the output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// A new file being written: `path` itself, or with `--force` a temporary file in the same
/// directory that replaces `path` once complete.
struct PrivateFile {
    file: std::fs::File,
    written: PathBuf,
    path: PathBuf,
}

impl PrivateFile {
    /// Creates the file (mode 0600), refusing an existing `path` unless `force`.
    fn create(path: &Path, force: bool) -> Result<Self, CliError> {
        let written = if force {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            path.with_file_name(format!(".{name}.{}.part", std::process::id()))
        } else {
            path.to_owned()
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&written).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::File {
                    path: written.clone(),
                    ja: "既に存在します。上書きするには --force を指定してください。",
                    en: "already exists; pass --force to overwrite it",
                }
            } else {
                CliError::Io {
                    what: format!("could not create {}", written.display()),
                    source,
                }
            }
        })?;
        Ok(Self {
            file,
            written,
            path: path.to_owned(),
        })
    }

    /// Removes what was created.
    fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.written);
    }

    /// Writes `body`, syncs, and puts the file in place.
    fn finish(mut self, body: &[u8]) -> Result<(), CliError> {
        let written = self
            .file
            .write_all(body)
            .and_then(|()| self.file.sync_all());
        if let Err(source) = written {
            let what = format!("could not write {}", self.written.display());
            self.discard();
            return Err(CliError::Io { what, source });
        }
        if self.written != self.path {
            std::fs::rename(&self.written, &self.path).map_err(|source| {
                let _ = std::fs::remove_file(&self.written);
                CliError::Io {
                    what: format!("could not replace {}", self.path.display()),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

/// `tsunagu audit verify`: the findings, and an error (exit code 1) unless the log is clean.
/// Records not placed yet (`pending`, the last second or so) are normal. With `--json` a log
/// that is not clean prints nothing on stdout, like every failed command; the findings go to
/// stderr.
async fn verify(ctx: &Context) -> Result<(), CliError> {
    let out = ctx.out();
    let verification = ctx.call(async |s| s.audit_verify().await).await?;
    if verification.clean {
        return out.value(&verification, || output::audit_verification(&verification));
    }
    out.notice(&output::audit_verification(&verification))?;
    let at = verification
        .first_bad_position
        .map(|position| {
            (
                format!("位置 {position} 以降の記録は信頼できません。"),
                format!(" Records from position {position} on cannot be trusted."),
            )
        })
        .unwrap_or_default();
    // The CLI's own error for this would live in crate::error; the server's code for a failed
    // integrity check says the same and maps to exit code 1.
    Err(CliError::Client(ClientError::Api {
        status: 200,
        body: ErrorBody {
            code: ErrorCode::IntegrityError,
            message_ja: format!(
                "監査ログの検証で {} 件の問題が見つかりました。{}",
                verification.problems.len(),
                at.0
            ),
            message_en: format!(
                "Verifying the audit log found {} problem(s).{}",
                verification.problems.len(),
                at.1
            ),
            fields: Vec::new(),
            retry_after_seconds: None,
        },
    }))
}

/// `tsunagu audit report KIND`.
async fn report(ctx: &Context, args: AuditReportArgs) -> Result<(), CliError> {
    let kind = ReportKind::from(args.kind);
    let report = ctx
        .call(async |s| {
            s.audit_report(kind, args.from.as_deref(), args.until.as_deref())
                .await
        })
        .await?;
    ctx.out().value(&report, || output::audit_report(&report))
}

/// `tsunagu audit sign-off`.
async fn sign_off(ctx: &Context, args: AuditSignOffArgs) -> Result<(), CliError> {
    let findings = match (args.findings, args.findings_file) {
        (Some(text), _) => text,
        (None, Some(path)) => read_findings(&path)?,
        (None, None) => {
            return Err(CliError::Input {
                ja: "所見を --findings または --findings-file で指定してください。",
                en: "Give the findings with --findings or --findings-file.",
            });
        }
    };
    let request = SignOffRequest {
        period_start: args.from,
        period_end: args.until,
        findings,
    };
    let review = ctx.call(async |s| s.audit_sign_off(&request).await).await?;
    ctx.out().value(&review, || {
        "点検の完了を記録しました。 The review has been signed off.\n\n".to_owned()
            + &output::review(&review)
    })
}

/// The findings from a file, or from stdin for `-`.
fn read_findings(path: &Path) -> Result<String, CliError> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text).map(drop))
    };
    read.map_err(|source| CliError::Io {
        what: format!("could not read the findings from {}", path.display()),
        source,
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn exports_go_to_new_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.csv");
        PrivateFile::create(&path, false)
            .unwrap()
            .finish(b"a,b\r\n")
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\r\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Never over an existing file, unless forced.
        assert!(matches!(
            PrivateFile::create(&path, false),
            Err(CliError::File { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\r\n");
        PrivateFile::create(&path, true)
            .unwrap()
            .finish(b"c\r\n")
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"c\r\n");
        // A discarded file leaves nothing behind.
        PrivateFile::create(&dir.path().join("gone.csv"), false)
            .unwrap()
            .discard();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["audit.csv"]);
    }

    #[test]
    fn filters_become_the_query() {
        let filters = AuditFilterArgs {
            user: None,
            room: None,
            action: Some("auth.".into()),
            outcome: Some(crate::cli::OutcomeArg::Failure),
            from: Some("2026-11-01T00:00:00+09:00".into()),
            until: None,
        };
        assert_eq!(
            query(filters, Some(1000)),
            AuditQuery {
                action: Some("auth.".into()),
                outcome: Some("failure".into()),
                from: Some("2026-11-01T00:00:00+09:00".into()),
                limit: Some(1000),
                ..AuditQuery::default()
            }
        );
    }
}
