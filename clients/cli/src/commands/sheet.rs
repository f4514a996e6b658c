//! The emergency information sheet commands (`tsunagu sheet …`): show it (as text, its
//! version history, or its print view saved as HTML or PDF), update it from a `SheetContent`
//! JSON file, and confirm its current version.
//!
//! Every change and every confirmation names the version it was based on, so that nobody
//! overwrites or confirms a version they have not read: `update` bases its change on the
//! version it reads first (unless `--base-version` names one), `confirm` confirms the version
//! it reads first. If someone changes the sheet in between, the server answers `conflict`
//! (exit code 6); show the sheet again and retry.

use std::io;

use tsunagu_protocol::sheet::{SheetContent, UpdateSheetRequest};

use super::Context;
use super::forms::{prepare_print, read_json, save_print};
use crate::cli::{SheetCommand, SheetShowArgs, SheetUpdateArgs};
use crate::error::CliError;
use crate::output;

/// The hint for a sheet content file that cannot be used.
const CONTENT_HINT: (&str, &str) = (
    "ファイルにはシートの内容（SheetContent: allergies, no_known_allergies, conditions, \
     medications, contacts, care_level, acp_wishes, dnar, dnar_note, notes）を書いてください。\
     現在の内容は `tsunagu sheet show ROOM --json` の current.sheet です。",
    "The file holds the sheet's content (a SheetContent: allergies, no_known_allergies, \
     conditions, medications, contacts, care_level, acp_wishes, dnar, dnar_note, notes); the \
     current content is current.sheet in `tsunagu sheet show ROOM --json`.",
);

/// Runs one `tsunagu sheet …` command.
pub(super) async fn run(ctx: &Context, command: SheetCommand) -> Result<(), CliError> {
    match command {
        SheetCommand::Show(args) => show(ctx, args).await,
        SheetCommand::Update(args) => update(ctx, args).await,
        SheetCommand::Confirm { room } => {
            let sheet = ctx
                .with_session(async |s, _| {
                    let read = s.emergency_sheet(room).await?;
                    if read.current.is_none() {
                        return Err(CliError::Input {
                            ja: "確認する救急医療情報がまだありません。先に \
                                 `tsunagu sheet update` で作成してください。",
                            en: "There is no sheet to confirm yet: write it first with \
                                 `tsunagu sheet update`.",
                        });
                    }
                    Ok(s.confirm_emergency_sheet(room, read.status.version).await?)
                })
                .await?;
            ctx.out().value(&sheet, || {
                format!(
                    "第 {version} 版を確認しました。 You have confirmed version {version}.\n\n{}",
                    output::sheet(&sheet),
                    version = sheet.status.version
                )
            })
        }
    }
}

/// `tsunagu sheet show`.
async fn show(ctx: &Context, args: SheetShowArgs) -> Result<(), CliError> {
    let SheetShowArgs {
        room,
        print,
        history,
    } = args;
    let out = ctx.out();
    if history {
        let history = ctx
            .call(async |s| s.emergency_sheet_versions(room).await)
            .await?;
        return out.value(&history, || output::sheet_history(&history));
    }
    if print.pdf.is_some() || print.html.is_some() {
        let chromium = prepare_print(&print)?;
        let html = ctx
            .call(async |s| s.emergency_sheet_print(room).await)
            .await?;
        return save_print(out, &html, &print, chromium.as_deref()).await;
    }
    let sheet = ctx.call(async |s| s.emergency_sheet(room).await).await?;
    out.value(&sheet, || output::sheet(&sheet))
}

/// `tsunagu sheet update`: the next version, based on the current one unless
/// `--base-version` names the version the change was prepared from.
async fn update(ctx: &Context, args: SheetUpdateArgs) -> Result<(), CliError> {
    let content: SheetContent = read_json(&args.data, io::stdin().lock(), Some(CONTENT_HINT))?;
    let SheetUpdateArgs {
        room,
        reason,
        base_version,
        ..
    } = args;
    let sheet = ctx
        .call(async |s| {
            let base_version = match base_version {
                Some(version) => version,
                None => s.emergency_sheet(room).await?.status.version,
            };
            let request = UpdateSheetRequest {
                base_version,
                sheet: content,
                reason,
            };
            s.update_emergency_sheet(room, &request).await
        })
        .await?;
    ctx.out().value(&sheet, || {
        format!(
            "救急医療情報を更新しました（第 {version} 版）。\n\
             The emergency information sheet has been updated (version {version}).\n\n{}",
            output::sheet(&sheet),
            version = sheet.status.version
        )
    })
}
