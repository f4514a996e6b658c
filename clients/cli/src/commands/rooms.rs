//! The patient-room commands (`tsunagu room …`) and the directory search
//! (`tsunagu directory`). Each is one API call; the server decides who may do what (for example
//! only accepted professional members invite, and only accepted members see the patient).
//!
//! The patient's details are shown only by `room show`; every other human-readable output names
//! the patient at most (`--json` prints the protocol value as the server sent it).

use tsunagu_protocol::rooms::{CreateRoomRequest, PatientDetails, RecordConsentRequest};

use super::Context;
use crate::cli::{RecordConsentArgs, RoomCommand, RoomCreateArgs};
use crate::error::CliError;
use crate::output;

/// Runs one `tsunagu room …` command.
pub(super) async fn run(ctx: &Context, command: RoomCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        RoomCommand::Create(args) => {
            let request = create_request(args);
            let room = ctx.call(async |s| s.create_room(&request).await).await?;
            out.value(&room, || output::room_created(&room))
        }
        RoomCommand::List => {
            let rooms = ctx.call(async |s| s.rooms().await).await?;
            out.value(&rooms, || output::room_summaries(&rooms))
        }
        RoomCommand::Show { room } => {
            let room = ctx.call(async |s| s.room(room).await).await?;
            out.value(&room, || output::room(&room))
        }
        RoomCommand::Members { room } => {
            let members = ctx.call(async |s| s.room_members(room).await).await?;
            out.value(&members, || output::members(&members))
        }
        RoomCommand::Invite { room, user } => {
            let member = ctx
                .call(async |s| s.invite_member(room, user).await)
                .await?;
            out.value(&member, || {
                "招待しました。受諾されるまで患者情報は見えません。\n\
                 The invitation has been sent; the patient's details stay hidden until it is \
                 accepted.\n\n"
                    .to_owned()
                    + &output::member(&member)
            })
        }
        RoomCommand::Revoke { room, user } => {
            ctx.call(async |s| s.revoke_member(room, user).await)
                .await?;
            out.notice(&format!(
                "ユーザー {user} の参加（または招待）を取り消しました。\n\
                 The membership or invitation of user {user} has been revoked.\n"
            ))
        }
        RoomCommand::Accept { room } => {
            let member = ctx
                .call(async |s| s.respond_to_invitation(room, true).await)
                .await?;
            out.value(&member, || {
                format!(
                    "招待を受諾しました。 You have joined the room.\n\
                     患者情報: `tsunagu room show {room}` / The patient's details: \
                     `tsunagu room show {room}`\n\n{}",
                    output::member(&member)
                )
            })
        }
        RoomCommand::Decline { room } => {
            let member = ctx
                .call(async |s| s.respond_to_invitation(room, false).await)
                .await?;
            out.value(&member, || {
                "招待を辞退しました。 You have declined the invitation.\n\n".to_owned()
                    + &output::member(&member)
            })
        }
        RoomCommand::Leave { room } => {
            ctx.call(async |s| s.leave_room(room).await).await?;
            out.notice(&format!(
                "部屋 {room} から退出しました。\nYou have left room {room}.\n"
            ))
        }
        RoomCommand::Consent(args) => {
            let room = args.room;
            let request = consent_request(args);
            let consent = ctx
                .call(async |s| s.record_consent(room, &request).await)
                .await?;
            out.value(&consent, || {
                "同意を記録しました。 The consent has been recorded.\n\n".to_owned()
                    + &output::consent(&consent)
            })
        }
        RoomCommand::Consents { room } => {
            let consents = ctx.call(async |s| s.consents(room).await).await?;
            out.value(&consents, || output::consents(&consents))
        }
        RoomCommand::WithdrawConsent {
            room,
            consent,
            reason,
        } => {
            let consent = ctx
                .call(async |s| s.withdraw_consent(room, consent, &reason).await)
                .await?;
            out.value(&consent, || {
                "同意の撤回を記録しました。この部屋には新たに投稿できません。\n\
                 The withdrawal has been recorded: the room is closed to new posts.\n\n"
                    .to_owned()
                    + &output::consent(&consent)
            })
        }
    }
}

/// `tsunagu directory QUERY`.
pub(super) async fn directory(ctx: &Context, query: String) -> Result<(), CliError> {
    let entries = ctx.call(async |s| s.directory(&query).await).await?;
    ctx.out()
        .value(&entries, || output::directory_entries(&entries))
}

/// The request of `tsunagu room create`.
fn create_request(args: RoomCreateArgs) -> CreateRoomRequest {
    CreateRoomRequest {
        patient: PatientDetails {
            name: args.name,
            name_kana: args.kana,
            date_of_birth: args.birth,
            address: args.address,
            insurer_numbers: args.insurers,
        },
    }
}

/// The request of `tsunagu room consent`.
fn consent_request(args: RecordConsentArgs) -> RecordConsentRequest {
    RecordConsentRequest {
        given_by: args.given_by,
        giver_name: args.giver_name,
        obtained_on: args.obtained_on,
        scope: args.scope,
        document_reference: args.document,
    }
}
