//! The command line: every command, argument and global option as clap derive types, and the
//! value parsers: roles, organisation kinds, consent givers and insurance kinds by wire name
//! (so that `--help` shows every wire name with its label), dates as `YYYY-MM-DD`, insurance
//! numbers as `KIND:NUMBER` and timeline sequence numbers as `12` or `#12`.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tsunagu_protocol::audit::ReportKind;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{ConsentGiver, Date, InsurerKind, InsurerNumber};
use tsunagu_protocol::timeline::Visibility;
use tsunagu_protocol::{
    AttachmentId, ClientPostId, ConsentId, FormId, InvitationId, OrganisationId, RoomId, SessionId,
    UserId,
};

/// The server used when neither `--server`, `TSUNAGU_SERVER` nor a stored login names one.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const EXIT_CODES: &str = "\
終了コード Exit codes:
  0  成功 success
  1  その他のエラー other error
  2  使い方の誤り usage error
  3  未ログイン・認証失敗・セッション切れ
     not logged in, authentication failed, session expired or token invalid
  4  権限なし・未完了の手順あり（パスワード変更、二要素認証の設定）
     forbidden, or a pending step (password change, TOTP enrolment) is required
  5  見つからない not found
  6  入力の誤り・競合 invalid input or conflict
  7  サーバーに接続できない・利用不可 server unreachable or unavailable
  8  アカウントロック・回数制限 account locked or rate limited";

/// tsunagu: Tsunagu のコマンドラインクライアント / the Tsunagu command-line client
#[derive(Debug, Parser)]
#[command(name = "tsunagu", version, after_help = EXIT_CODES, after_long_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options accepted before or after any command.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// サーバーの URL / Server URL [default: the server of the stored login, else
    /// http://127.0.0.1:8080]
    #[arg(long, global = true, env = "TSUNAGU_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,

    /// JSON で出力する / Print machine-readable JSON (the protocol value) on stdout
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// 追加で信頼するルート CA 証明書 (PEM) / Extra root CA certificate(s) to trust (PEM)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,

    /// 認証情報を保存するディレクトリ / Directory holding credentials.toml
    /// [default: <config dir>/tsunagu]
    #[arg(long, global = true, env = "TSUNAGU_CONFIG_DIR", value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// ログインしてセッションを保存する / Log in and store the session
    Login(LoginArgs),
    /// すべてのセッションを終了し、保存した認証情報を削除する / End all your sessions and
    /// delete the stored credentials
    Logout,
    /// ログイン中のアカウントを表示する / Show the logged-in account
    Whoami,
    /// 自分のセッションを一覧・終了する / List or revoke your sessions
    Sessions(SessionsArgs),
    /// パスワードを変更する / Change your password
    Password(PasswordArgs),
    /// 二要素認証（認証アプリ）/ Two-factor authentication (authenticator app)
    #[command(subcommand)]
    Totp(TotpCommand),
    /// 運用ポリシーを読む・同意する / Read or accept the operating policy
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// 招待コードでアカウントを作成する / Create your account from an invitation code
    AcceptInvitation(AcceptInvitationArgs),
    /// 管理者向けの操作 / Administration
    #[command(subcommand)]
    Admin(AdminCommand),
    /// 監査ログの検索・書き出し・検証・点検（セキュリティ責任者）/ Search, export, verify and
    /// review the audit trail (security officers)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// サーバーの時刻が同期しているかを表示する / Show whether the server's clock is
    /// synchronised
    Clock,
    /// 患者ごとの部屋：ケアチームと情報共有の同意 / Patient rooms: care team and consent
    #[command(subcommand)]
    Room(RoomCommand),
    /// 部屋に招待できる人を検索する / Find people who can be invited into rooms
    Directory {
        /// 表示名またはユーザー名の一部（1〜100文字）/ Part of a display name or username
        /// (1–100 characters)
        query: String,
    },
    /// 部屋に投稿する / Post to a room's timeline
    Post(PostArgs),
    /// 部屋のタイムラインを表示する / Show a room's timeline
    History(HistoryArgs),
    /// 新しい投稿を待ち受けて表示する（Ctrl-C で終了）/ Follow a room's timeline as events
    /// arrive (Ctrl-C to stop)
    Tail(TailArgs),
    /// 投稿に「見ました」を記録し、確認した人を表示する / Acknowledge a post (見ました) and
    /// show who has acknowledged it
    Ack(EntryArgs),
    /// 投稿を確認した人を表示する / Show who has acknowledged a post
    Acks(EntryArgs),
    /// 自分の投稿を訂正する（新しい版として記録）/ Correct your post (stored as a new version)
    Edit(EditArgs),
    /// 自分の投稿を削除する（以前の版は専門職が閲覧可能）/ Delete your post (earlier versions
    /// stay readable to professionals)
    Delete(DeleteArgs),
    /// 投稿の全版を表示する（専門職）/ Show every version of a post (professionals)
    Versions(EntryArgs),
    /// 添付ファイル / Attachments
    #[command(subcommand)]
    Attachment(AttachmentCommand),
    /// 既読にする / Mark a room's timeline read
    Read {
        /// 部屋 ID / Room id
        room: RoomId,
        /// この番号まで既読にする（省略時は最新まで）/ Mark read up to this number [default:
        /// the newest]
        #[arg(value_name = "SEQ", value_parser = parse_seq)]
        seq: Option<u64>,
    },
    /// 書式（様式・連携シート）：送信・受信箱・回答・確認・訂正・印刷 / Forms: send, inbox,
    /// answer, acknowledge, correct, print
    #[command(subcommand)]
    Form(FormCommand),
    /// 救急医療情報シート：表示・更新・確認・印刷 / The emergency information sheet: show,
    /// update, confirm, print
    #[command(subcommand)]
    Sheet(SheetCommand),
}

/// `tsunagu form …`.
#[derive(Debug, Subcommand)]
pub(crate) enum FormCommand {
    /// 使える書式を一覧する。--example で記入データの雛形を表示する / List the templates you
    /// may use; with --example, print a skeleton data file for one
    Templates {
        /// この書式の記入データの雛形（JSON）を表示する（各項目に型の合った仮の値が入った出発点。
        /// そのままでは受け付けられないことがあります）/ Print a skeleton data file
        /// (JSON) for this template: every field with a placeholder of the right type, a
        /// starting point that may not be valid as it is
        #[arg(long, value_name = "KEY")]
        example: Option<String>,
    },
    /// 書式のテンプレート / Templates
    #[command(subcommand)]
    Template(TemplateCommand),
    /// 書式を部屋に送信する / Send a form into a room
    Send(FormSendArgs),
    /// 部屋の書式を一覧する / List a room's forms
    List {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 自分宛ての未完了の書式を一覧する（期限の近い順）/ List the forms waiting for you
    /// (soonest due first)
    Inbox,
    /// 書式を表示・保存する（HTML・PDF・FHIR）/ Show a form, or save it as HTML or PDF, or
    /// print it as FHIR
    Show(FormShowArgs),
    /// 書式に回答する（返信の書式を送る）/ Answer a form with a reply form
    Answer(FormAnswerArgs),
    /// 書式を確認済みにする（回答なし）/ Acknowledge a form without answering it
    Ack {
        /// 書式 ID / Form id
        id: FormId,
    },
    /// 自分が送った書式を訂正する（新しい版として記録）/ Correct a form you sent (stored as a
    /// new version)
    Correct(FormCorrectArgs),
}

/// `tsunagu form template …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TemplateCommand {
    /// テンプレートの項目を表示する / Show a template's sections and fields
    Show {
        /// テンプレートのキー（例 admission_notice）/ The template's key (e.g.
        /// admission_notice)
        key: String,
        /// この版を表示する（省略時は最新）/ Show this version [default: the newest]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        version: Option<u32>,
        /// FHIR R4 Questionnaire（JSON）として表示する / Print it as a FHIR R4 Questionnaire
        /// (JSON)
        #[arg(long)]
        fhir: bool,
    },
    /// テンプレートまたはその新しい版を登録する（管理者）/ Add a template, or a new version of
    /// one (administrators)
    Add {
        /// テンプレート定義の JSON ファイル（`-` なら標準入力）/ The template definition, a
        /// JSON file (`-`: stdin)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// A recipient given with `--to`: a role by its wire name, or a member by user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecipientArg {
    /// Everyone in the room with this role.
    Role(Role),
    /// This member.
    User(UserId),
}

/// Parses `--to`: a role's wire name (`physician`) or a user id.
pub(crate) fn parse_recipient(text: &str) -> Result<RecipientArg, String> {
    let text = text.trim();
    if let Some(role) = Role::parse(text) {
        return Ok(RecipientArg::Role(role));
    }
    if let Ok(user) = text.parse::<UserId>() {
        return Ok(RecipientArg::User(user));
    }
    let roles: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
    Err(format!(
        "役割の名前またはユーザー ID を指定してください（役割: {roles}）/ expected a role \
         ({roles}) or a user id",
        roles = roles.join(", ")
    ))
}

/// `tsunagu form send`.
#[derive(Debug, Args)]
pub(crate) struct FormSendArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// テンプレートのキー（`tsunagu form templates` で確認）/ The template's key (see
    /// `tsunagu form templates`)
    pub(crate) template: String,
    /// 記入データの JSON ファイル（`-` なら標準入力。雛形は `tsunagu form templates --example
    /// KEY`）/ The form data, a JSON file (`-`: stdin; for a skeleton see `tsunagu form
    /// templates --example KEY`)
    #[arg(long, value_name = "FILE")]
    pub(crate) data: PathBuf,
    /// 宛先：役割（physician など。その役割の部屋のメンバー全員、1人の回答で完了）またはユーザー
    /// ID（繰り返し指定可。全員の回答で完了）/ To: a role (physician, …: every member
    /// of the room with it; one answer completes the form), or user ids (repeat the option;
    /// each must answer)
    #[arg(long = "to", value_name = "ROLE|USER", required = true, value_parser = parse_recipient)]
    pub(crate) to: Vec<RecipientArg>,
    /// 回答期限（省略時はテンプレートの規則）/ Answer by this day [default: the template's
    /// rule]
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) due: Option<Date>,
    /// 家族・本人にも見えるようにする（省略時はケアチームのみ）/ Let the family and the
    /// patient see it too [default: the care team only]
    #[arg(long)]
    pub(crate) everyone: bool,
    /// テンプレートの版（省略時は最新）/ The template's version [default: the newest]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) template_version: Option<u32>,
    /// 送信 ID。再送時に同じ値を指定すると二重送信になりません（省略時は新規発行して表示）/
    /// The sending's id: retrying with the same id never sends twice [default: a fresh one,
    /// shown]
    #[arg(long, value_name = "UUID")]
    pub(crate) client_id: Option<ClientPostId>,
}

/// Where `form show` and `sheet show` save the print view, and how a PDF is made.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("saved").multiple(true).args(["pdf", "html"])))]
pub(crate) struct PrintArgs {
    /// 印刷用表示を PDF で保存する（ローカルの Chromium を使用）/ Save the print view as a PDF
    /// (made with a local Chromium)
    #[arg(long, value_name = "FILE")]
    pub(crate) pdf: Option<PathBuf>,
    /// 印刷用表示を HTML で保存する（`-` なら標準出力）/ Save the print view as HTML (`-`:
    /// stdout)
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// PDF の作成に使う Chromium（省略時は PATH から chromium、chromium-browser、google-chrome
    /// を探す）/ The Chromium to make the PDF with [default: chromium, chromium-browser or
    /// google-chrome on PATH]
    #[arg(long, value_name = "PATH", env = "TSUNAGU_CHROMIUM")]
    pub(crate) chromium: Option<PathBuf>,
    /// 既存のファイルを上書きする / Overwrite existing files
    #[arg(long, requires = "saved")]
    pub(crate) force: bool,
}

/// `tsunagu form show`.
#[derive(Debug, Args)]
pub(crate) struct FormShowArgs {
    /// 書式 ID / Form id
    pub(crate) id: FormId,
    /// この版を表示する（省略時は最新）/ Show this version [default: the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) version: Option<u32>,
    #[command(flatten)]
    pub(crate) print: PrintArgs,
    /// FHIR R4 QuestionnaireResponse（JSON）として表示する / Print it as a FHIR R4
    /// QuestionnaireResponse (JSON)
    #[arg(long, conflicts_with = "saved")]
    pub(crate) fhir: bool,
}

/// `tsunagu form answer`.
#[derive(Debug, Args)]
pub(crate) struct FormAnswerArgs {
    /// 回答する書式の ID / The id of the form to answer
    pub(crate) id: FormId,
    /// 回答データの JSON ファイル（`-` なら標準入力）/ The answer's data, a JSON file (`-`:
    /// stdin)
    #[arg(long, value_name = "FILE")]
    pub(crate) data: PathBuf,
    /// 送信 ID。再送時に同じ値を指定すると二重送信になりません（省略時は新規発行して表示）/
    /// The answer's id: retrying with the same id never answers twice [default: a fresh one,
    /// shown]
    #[arg(long, value_name = "UUID")]
    pub(crate) client_id: Option<ClientPostId>,
}

/// `tsunagu form correct`.
#[derive(Debug, Args)]
pub(crate) struct FormCorrectArgs {
    /// 書式 ID / Form id
    pub(crate) id: FormId,
    /// 訂正後の記入データの JSON ファイル（`-` なら標準入力）/ The corrected data, a JSON file
    /// (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    pub(crate) data: PathBuf,
    /// 訂正の理由（1〜500文字、記録されます）/ Why (1–500 characters; recorded with the
    /// correction)
    #[arg(long)]
    pub(crate) reason: String,
    /// 訂正する版（省略時は現在の版を取得）/ The version being corrected [default: the current
    /// one, fetched]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) base_version: Option<u32>,
}

/// `tsunagu sheet …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SheetCommand {
    /// 救急医療情報を表示・保存する（HTML・PDF）、または版の履歴を表示する / Show the sheet,
    /// save it as HTML or PDF, or show its history
    Show(SheetShowArgs),
    /// 救急医療情報を更新する（新しい版として記録）/ Update the sheet (stored as a new version)
    Update(SheetUpdateArgs),
    /// 現在の版の内容が正しいことを確認する / Confirm that the current version is right
    Confirm {
        /// 部屋 ID / Room id
        room: RoomId,
    },
}

/// `tsunagu sheet show`.
#[derive(Debug, Args)]
pub(crate) struct SheetShowArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    #[command(flatten)]
    pub(crate) print: PrintArgs,
    /// 版の履歴（誰がいつ何を変えたか、新しい順）を表示する / Show every version: who changed
    /// what and when, newest first
    #[arg(long, conflicts_with = "saved")]
    pub(crate) history: bool,
}

/// `tsunagu sheet update`.
#[derive(Debug, Args)]
pub(crate) struct SheetUpdateArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// シートの内容（SheetContent）の JSON ファイル（`-` なら標準入力）/ The sheet's content
    /// (a SheetContent), a JSON file (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    pub(crate) data: PathBuf,
    /// 変更の理由（500文字まで、記録されます）/ Why it changed (up to 500 characters; recorded)
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// 変更のもとにした版（省略時は現在の版を取得。初回は 0）/ The version this change is
    /// based on [default: the current one, fetched; 0 for the first]
    #[arg(long, value_name = "N")]
    pub(crate) base_version: Option<u32>,
}

/// Who may see a post, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VisibilityArg {
    /// ケアチーム（専門職）のみ / Care professionals only
    #[value(alias = "care_team")]
    CareTeam,
    /// 家族・本人にも見える / The family and the patient too
    Everyone,
}

impl From<VisibilityArg> for Visibility {
    fn from(value: VisibilityArg) -> Self {
        match value {
            VisibilityArg::CareTeam => Self::CareTeam,
            VisibilityArg::Everyone => Self::Everyone,
        }
    }
}

/// `tsunagu post`.
#[derive(Debug, Args)]
pub(crate) struct PostArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 本文（`-` なら標準入力から読む）/ The text (`-`: read it from stdin)
    pub(crate) text: String,
    /// 緊急の連絡として投稿する（急変など）/ Post as an urgent notice
    #[arg(long)]
    pub(crate) urgent: bool,
    /// 公開範囲（家族・本人は everyone のみ投稿可）/ Who may see it (family members and
    /// patients may post for everyone only)
    #[arg(long, value_enum, default_value_t = VisibilityArg::CareTeam)]
    pub(crate) visibility: VisibilityArg,
    /// 投稿 ID。再送時に同じ値を指定すると二重投稿になりません（省略時は新規発行）/
    /// The post's id: retrying with the same id never posts twice [default: a fresh one]
    #[arg(long, value_name = "UUID")]
    pub(crate) client_id: Option<ClientPostId>,
    /// ファイルを添付する（JPEG・PNG・PDF、20 MiB まで、10 個まで。繰り返し指定可。添付が
    /// あれば本文は "" でも可）/ Attach a file (JPEG, PNG or PDF, at most 20 MiB; up to 10,
    /// repeat the option; with an attachment the text may be "")
    #[arg(long = "attach", value_name = "FILE")]
    pub(crate) attach: Vec<PathBuf>,
}

/// `tsunagu attachment …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AttachmentCommand {
    /// 添付ファイルを保存する / Save an attachment
    Get(AttachmentGetArgs),
}

/// `tsunagu attachment get`.
#[derive(Debug, Args)]
pub(crate) struct AttachmentGetArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 添付ファイル ID（`tsunagu history` に表示）/ The attachment's id (shown by
    /// `tsunagu history`)
    pub(crate) attachment: AttachmentId,
    /// 保存先（`-` なら標準出力。省略時は元のファイル名で現在のディレクトリに）/ Where to
    /// save it (`-`: stdout) [default: its own name, in the current directory]
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// 既存のファイルを上書きする / Overwrite an existing file
    #[arg(long)]
    pub(crate) force: bool,
}

/// `tsunagu history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// この番号より後から表示する / Show events after this number
    #[arg(long, value_name = "SEQ", value_parser = parse_seq_or_zero, default_value_t = 0)]
    pub(crate) after: u64,
    /// 最大件数（1〜500、省略時は最新まですべて）/ At most this many (1–500) [default: all up
    /// to the newest]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: Option<u32>,
}

/// `tsunagu tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// この番号より後から表示する（省略時は最新の次から）/ Start after this number
    /// [default: the newest]
    #[arg(long, value_name = "SEQ", value_parser = parse_seq_or_zero)]
    pub(crate) after: Option<u64>,
    /// WebSocket を使わず、一定間隔で問い合わせる / Poll every few seconds instead of
    /// following over the WebSocket
    #[arg(long)]
    pub(crate) poll: bool,
    /// 問い合わせの間隔（秒、1〜3600、--poll のとき）/ Seconds between polls (1–3600, with
    /// --poll)
    #[arg(long, value_name = "SECS", default_value_t = 3, requires = "poll",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) interval: u64,
}

/// A post named by its number: `tsunagu ack`, `acks` and `versions`.
#[derive(Debug, Args)]
pub(crate) struct EntryArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 投稿の番号（`tsunagu history` の #）/ The post's number (the # in `tsunagu history`)
    #[arg(value_name = "SEQ", value_parser = parse_seq)]
    pub(crate) seq: u64,
}

/// `tsunagu edit`.
#[derive(Debug, Args)]
pub(crate) struct EditArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 元の投稿の番号（訂正の番号ではなく）/ The original post's number (not a correction's)
    #[arg(value_name = "SEQ", value_parser = parse_seq)]
    pub(crate) seq: u64,
    /// 訂正後の本文（`-` なら標準入力から読む）/ The corrected text (`-`: read it from stdin)
    pub(crate) text: String,
    /// 訂正の理由（記録されます）/ Why (recorded with the correction)
    #[arg(long)]
    pub(crate) reason: String,
}

/// `tsunagu delete`.
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 元の投稿の番号 / The original post's number
    #[arg(value_name = "SEQ", value_parser = parse_seq)]
    pub(crate) seq: u64,
    /// 削除の理由（記録されます）/ Why (recorded with the deletion)
    #[arg(long)]
    pub(crate) reason: String,
}

/// `tsunagu login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// ユーザー名 / Username
    #[arg(long, short)]
    pub(crate) username: String,
    /// パスワードを標準入力の1行目から読む / Read the password from the first line of stdin
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// 認証アプリの確認コード / Code from the authenticator app
    #[arg(long, value_name = "CODE", conflicts_with = "recovery_code")]
    pub(crate) totp: Option<String>,
    /// 確認コードの代わりにリカバリーコードを使う / Use a recovery code instead
    #[arg(long, value_name = "CODE")]
    pub(crate) recovery_code: Option<String>,
}

/// `tsunagu sessions [revoke ID]`.
#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<SessionsCommand>,
}

/// `tsunagu sessions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// セッションを終了する / Revoke one of your sessions
    Revoke {
        /// セッション ID / Session id
        id: SessionId,
    },
}

/// `tsunagu password`.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// 標準入力から現在のパスワード（1行目）と新しいパスワード（2行目）を読む /
    /// Read the current password (line 1) and the new one (line 2) from stdin
    #[arg(long)]
    pub(crate) stdin: bool,
}

/// `tsunagu policy …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// 運用ポリシーを表示する / Show the operating policy
    Show,
    /// 表示されている版の運用ポリシーに同意する / Accept the operating policy
    Accept {
        /// 同意する版（`tsunagu policy show` に表示）/ The version to accept (shown by
        /// `tsunagu policy show`)
        #[arg(long)]
        version: String,
    },
}

/// `tsunagu totp …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TotpCommand {
    /// 認証アプリを登録する / Enrol an authenticator app
    Enrol {
        /// 確認コード（省略時は入力を求める）/ The authenticator's code (prompted if absent)
        #[arg(long, value_name = "CODE", conflicts_with = "no_confirm")]
        code: Option<String>,
        /// シークレットを表示するだけで確認しない（後で `tsunagu totp confirm`）/
        /// Only show the secret; confirm later with `tsunagu totp confirm`
        #[arg(long)]
        no_confirm: bool,
    },
    /// 登録を確認コードで完了する / Complete an enrolment with a code
    Confirm {
        /// 認証アプリの確認コード / The authenticator's code
        code: String,
    },
}

/// `tsunagu accept-invitation`.
#[derive(Debug, Args)]
pub(crate) struct AcceptInvitationArgs {
    /// 招待コード / Invitation code
    #[arg(long)]
    pub(crate) code: String,
    /// ログイン名（半角英小文字・数字・. _ -）/ Login name (a-z 0-9 . _ -)
    #[arg(long, short)]
    pub(crate) username: String,
    /// 表示名 / Name shown to colleagues
    #[arg(long)]
    pub(crate) display_name: String,
    /// パスワードを標準入力の1行目から読む / Read the password from the first line of stdin
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

/// `tsunagu admin …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// 組織 / Organisations
    #[command(subcommand)]
    Org(OrgCommand),
    /// 組織への招待を作成する / Invite a person to an organisation
    Invite {
        /// 組織 ID / Organisation id
        organisation: OrganisationId,
        /// 役割 / Role
        #[arg(long, value_parser = WireEnumParser::<Role>::new())]
        role: Role,
        /// 招待相手の名前（管理用）/ Whom the invitation is for
        #[arg(long)]
        name: Option<String>,
        /// 有効時間（1〜720、既定 72）/ Hours until the code expires (1–720, default 72)
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..=720))]
        valid_hours: Option<u32>,
    },
    /// 組織の招待を一覧する / List an organisation's invitations
    Invitations {
        /// 組織 ID / Organisation id
        organisation: OrganisationId,
    },
    /// 招待を取り消す / Revoke a pending invitation
    InvitationRevoke {
        /// 招待 ID / Invitation id
        id: InvitationId,
    },
    /// 組織のユーザーを一覧する / List an organisation's users
    Users {
        /// 組織 ID / Organisation id
        organisation: OrganisationId,
    },
    /// ユーザー / Users
    #[command(subcommand)]
    User(UserCommand),
}

/// `tsunagu admin org …`.
#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// 組織を作成する（システム管理者）/ Create an organisation (system admin)
    Create {
        /// 組織名 / Name
        name: String,
        /// 種別 / Kind
        #[arg(long, value_parser = WireEnumParser::<OrganisationKind>::new())]
        kind: OrganisationKind,
        /// 家族・本人にも二要素認証を必須にする / Require TOTP of family and patients too
        #[arg(long)]
        require_totp_for_all: bool,
    },
    /// 組織を一覧する / List organisations
    List,
    /// 組織を表示する / Show an organisation
    Show {
        /// 組織 ID / Organisation id
        id: OrganisationId,
    },
    /// 組織名や二要素認証の方針を変更する / Rename an organisation or change its TOTP policy
    Update {
        /// 組織 ID / Organisation id
        id: OrganisationId,
        /// 新しい組織名 / New name
        #[arg(long)]
        name: Option<String>,
        /// 家族・本人にも二要素認証を必須にするか (true/false) / Require TOTP of family and patients too
        #[arg(long)]
        require_totp_for_all: Option<bool>,
    },
}

/// `tsunagu admin user …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// ユーザーを表示する / Show a user
    Show {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// ログインできないようにする / Disable the account
    Disable {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// 再び有効にする / Enable the account again
    Enable {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// 一時パスワードを発行する / Issue a one-time password
    ResetPassword {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// 二要素認証の登録を解除する / Remove the TOTP enrolment
    ResetTotp {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// 役割を変更する / Change the role
    Role {
        /// ユーザー ID / User id
        id: UserId,
        /// 新しい役割 / New role
        #[arg(value_parser = WireEnumParser::<Role>::new())]
        role: Role,
        /// 変更理由（記録されます）/ Why (recorded with the grant)
        #[arg(long)]
        reason: String,
    },
    /// 役割の付与履歴 / Role-grant history
    Grants {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// ユーザーのセッションを一覧する / List the user's sessions
    Sessions {
        /// ユーザー ID / User id
        id: UserId,
    },
    /// ユーザーのすべてのセッションを終了する / End all of the user's sessions
    RevokeSessions {
        /// ユーザー ID / User id
        id: UserId,
    },
}

/// `tsunagu room …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RoomCommand {
    /// 患者の部屋を作成する（専門職）/ Open a room for a patient (professionals)
    Create(RoomCreateArgs),
    /// 参加中・招待中の部屋を一覧する / List the rooms you belong to or are invited to
    List,
    /// 部屋と患者情報を表示する（閲覧は記録されます）/ Show a room with the patient's details
    /// (every read is audited)
    Show {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// ケアチームを一覧する / List the care team and its invitations
    Members {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 部屋に招待する（`tsunagu directory` で ID を検索）/ Invite a person (find their id with
    /// `tsunagu directory`)
    Invite {
        /// 部屋 ID / Room id
        room: RoomId,
        /// 招待する人のユーザー ID / The invitee's user id
        user: UserId,
    },
    /// メンバーまたは招待を取り消す / Revoke a member or an invitation
    Revoke {
        /// 部屋 ID / Room id
        room: RoomId,
        /// ユーザー ID / User id
        user: UserId,
    },
    /// 自分への招待を受諾する / Accept your invitation
    Accept {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 自分への招待を辞退する / Decline your invitation
    Decline {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 部屋から退出する / Leave the room
    Leave {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 情報共有の同意を記録する / Record the patient's consent to sharing
    Consent(RecordConsentArgs),
    /// 同意の記録を一覧する / List the consent records
    Consents {
        /// 部屋 ID / Room id
        room: RoomId,
    },
    /// 同意の撤回を記録する / Record the withdrawal of a consent
    WithdrawConsent {
        /// 部屋 ID / Room id
        room: RoomId,
        /// 同意 ID / Consent id
        consent: ConsentId,
        /// 撤回の理由（記録されます）/ Why (recorded)
        #[arg(long)]
        reason: String,
    },
}

/// `tsunagu room create`.
#[derive(Debug, Args)]
pub(crate) struct RoomCreateArgs {
    /// 患者の氏名 / The patient's name
    #[arg(long)]
    pub(crate) name: String,
    /// フリガナ / The name in kana
    #[arg(long)]
    pub(crate) kana: String,
    /// 生年月日 / Date of birth
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) birth: Date,
    /// 住所 / Address
    #[arg(long)]
    pub(crate) address: Option<String>,
    /// 保険者番号（複数可）。種別: medical（医療保険）, long_term_care（介護保険）,
    /// other（公費・その他）/ Insurance number, repeatable. KIND: medical, long_term_care, other
    #[arg(long = "insurer", value_name = "KIND:NUMBER", value_parser = parse_insurer)]
    pub(crate) insurers: Vec<InsurerNumber>,
}

/// `tsunagu room consent`.
#[derive(Debug, Args)]
pub(crate) struct RecordConsentArgs {
    /// 部屋 ID / Room id
    pub(crate) room: RoomId,
    /// 同意した人 / Who consented
    #[arg(long, value_parser = WireEnumParser::<ConsentGiver>::new())]
    pub(crate) given_by: ConsentGiver,
    /// 同意した人の氏名 / The name of the person who consented
    #[arg(long)]
    pub(crate) giver_name: String,
    /// 同意を得た日 / When the consent was obtained
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) obtained_on: Date,
    /// 同意の範囲 / What the consent covers (e.g. 医療・介護関係者間での情報共有)
    #[arg(long, value_name = "TEXT")]
    pub(crate) scope: String,
    /// 同意書の保管場所 / Where the signed document is kept
    #[arg(long, value_name = "REF")]
    pub(crate) document: Option<String>,
}

/// `tsunagu audit …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// 監査記録を検索する（古い順）/ Search the audit records (oldest first)
    Search(AuditSearchArgs),
    /// 監査記録を CSV・JSON Lines・FHIR で書き出す（10万件まで）/ Export the audit records as
    /// CSV, JSON lines or FHIR (up to 100,000)
    Export(AuditExportArgs),
    /// 改ざん検知ログを検証する（問題があれば終了コード 1）/ Verify the tamper-evident log
    /// (exit code 1 if it is not clean)
    Verify,
    /// 点検用レポートを表示する / Run a review report
    Report(AuditReportArgs),
    /// 点検の完了と所見を記録する / Sign off a review period with its findings
    SignOff(AuditSignOffArgs),
    /// 点検の記録を一覧する（新しい期間から）/ List the review sign-offs (newest period first)
    Reviews,
}

/// The filters shared by `tsunagu audit search` and `export`; all optional, combined with AND.
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditFilterArgs {
    /// この利用者の操作 / Records by this user
    #[arg(long, value_name = "ID")]
    pub(crate) user: Option<UserId>,
    /// この部屋についての記録 / Records about this patient room
    #[arg(long, value_name = "ID")]
    pub(crate) room: Option<RoomId>,
    /// 操作名（timeline.read）または末尾が . の操作群（auth.）/ An action (timeline.read) or
    /// a family of them ending in a dot (auth.)
    #[arg(long, value_name = "ACTION")]
    pub(crate) action: Option<String>,
    /// 結果 / Outcome
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub(crate) outcome: Option<OutcomeArg>,
    /// この日時から（含む）。RFC 3339、または YYYY-MM-DD（日本時間 0:00）/ From this instant,
    /// inclusive: RFC 3339, or YYYY-MM-DD (midnight, Japan time)
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) from: Option<String>,
    /// この日時まで（含まない）。形式は --from と同じ / Until this instant, exclusive; as
    /// --from
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) until: Option<String>,
}

/// An audit record's outcome, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutcomeArg {
    /// 成功 / Succeeded
    Success,
    /// 失敗（パスワード誤りなど）/ Failed (a wrong password, …)
    Failure,
    /// 拒否（権限なし）/ Refused (not allowed)
    Refused,
}

impl OutcomeArg {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Refused => "refused",
        }
    }
}

/// `tsunagu audit search`.
#[derive(Debug, Args)]
pub(crate) struct AuditSearchArgs {
    #[command(flatten)]
    pub(crate) filters: AuditFilterArgs,
    /// 1ページの件数（1〜1000、既定 100）/ Records per page (1–1000) [default: 100]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) limit: Option<u32>,
    /// 続きのページもすべて取得する / Fetch every following page too
    #[arg(long)]
    pub(crate) all: bool,
}

/// The formats of `tsunagu audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormatArg {
    /// CSV（UTF-8、BOM 付き、Excel 向け）/ CSV (UTF-8 with a BOM, for spreadsheets)
    Csv,
    /// JSON Lines（1行1記録）/ JSON lines, one record a line
    Jsonl,
    /// FHIR R4 AuditEvent（NDJSON）/ FHIR R4 AuditEvent resources (NDJSON)
    Fhir,
}

impl ExportFormatArg {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Fhir => "fhir",
        }
    }
}

/// `tsunagu audit export`.
#[derive(Debug, Args)]
pub(crate) struct AuditExportArgs {
    /// 形式 / Format
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormatArg,
    #[command(flatten)]
    pub(crate) filters: AuditFilterArgs,
    /// 最大件数（1〜100000、既定 100000）/ At most this many records (1–100000) [default:
    /// 100000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) limit: Option<u32>,
    /// 保存先（所有者のみ読める新しいファイル。`-` または省略時は標準出力）/ Where to save
    /// it: a new file only its owner can read (`-` or absent: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// 既存のファイルを上書きする / Overwrite an existing file
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
}

/// The review reports, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportKindArg {
    /// ケアチーム外の人による部屋へのアクセス / Access to a room by someone outside its care
    /// team
    #[value(alias = "outside_care_team")]
    OutsideCareTeam,
    /// 時間外（日本時間）の患者情報へのアクセス / Access to patient information out of office
    /// hours (Japan time)
    #[value(alias = "out_of_hours")]
    OutOfHours,
    /// 書き出しと大量の閲覧 / Exports and large reads
    #[value(alias = "bulk_exports")]
    BulkExports,
    /// ログインの失敗とロック / Failed logins and lockouts
    #[value(alias = "failed_logins")]
    FailedLogins,
    /// 拒否の多いアカウント / Accounts refused many times
    #[value(alias = "many_refusals")]
    ManyRefusals,
    /// サーバーの時刻が同期していなかった期間 / When the server's clock was not synchronised
    #[value(alias = "clock_unsynchronised")]
    ClockUnsynchronised,
}

impl From<ReportKindArg> for ReportKind {
    fn from(value: ReportKindArg) -> Self {
        match value {
            ReportKindArg::OutsideCareTeam => Self::OutsideCareTeam,
            ReportKindArg::OutOfHours => Self::OutOfHours,
            ReportKindArg::BulkExports => Self::BulkExports,
            ReportKindArg::FailedLogins => Self::FailedLogins,
            ReportKindArg::ManyRefusals => Self::ManyRefusals,
            ReportKindArg::ClockUnsynchronised => Self::ClockUnsynchronised,
        }
    }
}

/// `tsunagu audit report`.
#[derive(Debug, Args)]
pub(crate) struct AuditReportArgs {
    /// レポートの種類 / Which report
    #[arg(value_enum, value_name = "KIND")]
    pub(crate) kind: ReportKindArg,
    /// この日時から（既定: 30日前）。RFC 3339 または YYYY-MM-DD（日本時間 0:00）/ From this
    /// instant [default: 30 days ago]: RFC 3339, or YYYY-MM-DD (midnight, Japan time)
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) from: Option<String>,
    /// この日時まで（含まない、既定: 現在）/ Until this instant, exclusive [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) until: Option<String>,
}

/// `tsunagu audit sign-off`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("findings_source").required(true).args(["findings", "findings_file"])))]
pub(crate) struct AuditSignOffArgs {
    /// 点検した期間の開始。RFC 3339 または YYYY-MM-DD（日本時間 0:00）/ Start of the period
    /// reviewed: RFC 3339, or YYYY-MM-DD (midnight, Japan time)
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) from: String,
    /// 点検した期間の終了（現在以前）/ End of the period reviewed (not in the future)
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) until: String,
    /// 所見と対応（1〜4000文字、暗号化して保存）/ What the review found and what was done
    /// (1–4000 characters; stored sealed)
    #[arg(long, value_name = "TEXT")]
    pub(crate) findings: Option<String>,
    /// 所見をファイルから読む（`-` なら標準入力）/ Read the findings from a file (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    pub(crate) findings_file: Option<PathBuf>,
}

/// Parses an instant for the audit commands: RFC 3339 as given, or a calendar date
/// `YYYY-MM-DD`, meaning its midnight in Japan (`YYYY-MM-DDT00:00:00+09:00`).
pub(crate) fn parse_instant(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(text, rfc3339).is_ok() {
        return Ok(text.to_owned());
    }
    match parse_date(text) {
        Ok(date) => Ok(format!(
            "{:04}-{:02}-{:02}T00:00:00+09:00",
            date.year(),
            u8::from(date.month()),
            date.day()
        )),
        Err(err) if err.contains("no such date") => Err(err),
        Err(_) => Err(
            "日時は RFC 3339（例 2026-11-21T09:00:00+09:00）または YYYY-MM-DD で指定してください / \
             expected an RFC 3339 instant (e.g. 2026-11-21T09:00:00+09:00) or a date as YYYY-MM-DD"
                .to_owned(),
        ),
    }
}

/// Parses a calendar date given as `YYYY-MM-DD`; a date of that shape that does not exist
/// (2026-02-29, 2026-13-01) is reported as such.
pub(crate) fn parse_date(text: &str) -> Result<Date, String> {
    let text = text.trim();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(|_| {
        let shaped = text.len() == 10
            && text.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                _ => c.is_ascii_digit(),
            });
        if shaped {
            "存在しない日付です / no such date".to_owned()
        } else {
            "日付は YYYY-MM-DD の形式で指定してください（例 1938-04-01）/ \
             expected a date as YYYY-MM-DD (e.g. 1938-04-01)"
                .to_owned()
        }
    })
}

/// Parses an insurance number given as `KIND:NUMBER` (a full-width `：` is accepted too), KIND
/// being the wire name of an [`InsurerKind`]. The number itself is checked by the server.
pub(crate) fn parse_insurer(text: &str) -> Result<InsurerNumber, String> {
    let expected = || {
        let kinds: Vec<&str> = InsurerKind::all().iter().map(|k| k.wire_name()).collect();
        format!(
            "種別:番号 の形式で指定してください（種別は {kinds}）/ expected KIND:NUMBER with \
             KIND one of {kinds} (e.g. long_term_care:0123456789)",
            kinds = kinds.join(", ")
        )
    };
    let (kind, number) = text.split_once([':', '：']).ok_or_else(expected)?;
    let kind = InsurerKind::all()
        .iter()
        .copied()
        .find(|k| k.wire_name() == kind.trim())
        .ok_or_else(expected)?;
    let number = number.trim();
    if number.is_empty() {
        return Err(format!(
            "番号が空です / the number is missing\n{}",
            expected()
        ));
    }
    Ok(InsurerNumber {
        kind,
        number: number.to_owned(),
    })
}

/// Parses a timeline sequence number, `12` or `#12` (as `tsunagu history` shows it; a
/// full-width `＃` is accepted too). Numbers start at 1.
pub(crate) fn parse_seq(text: &str) -> Result<u64, String> {
    match parse_seq_or_zero(text)? {
        0 => Err("番号は1以上です / numbers start at 1".to_owned()),
        seq => Ok(seq),
    }
}

/// [`parse_seq`], also accepting 0 (for `--after`: from the start).
pub(crate) fn parse_seq_or_zero(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.strip_prefix(['#', '＃']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "番号（12 または #12）を指定してください / expected a number such as 12 or #12"
                .to_owned(),
        );
    }
    digits
        .parse()
        .map_err(|_| "番号が大きすぎます / the number is too large".to_owned())
}

/// A protocol enum given on the command line by its wire name.
pub(crate) trait WireEnum: Copy + Send + Sync + 'static {
    /// Every value, in display order.
    fn all() -> &'static [Self];
    /// The wire name.
    fn wire_name(self) -> &'static str;
    /// "日本語 English", shown in `--help`.
    fn label(self) -> String;
}

impl WireEnum for Role {
    fn all() -> &'static [Self] {
        &Role::ALL
    }
    fn wire_name(self) -> &'static str {
        self.as_str()
    }
    fn label(self) -> String {
        format!("{} {}", self.label_ja(), self.label_en())
    }
}

impl WireEnum for OrganisationKind {
    fn all() -> &'static [Self] {
        &OrganisationKind::ALL
    }
    fn wire_name(self) -> &'static str {
        self.as_str()
    }
    fn label(self) -> String {
        format!("{} {}", self.label_ja(), self.label_en())
    }
}

impl WireEnum for ConsentGiver {
    fn all() -> &'static [Self] {
        &[Self::Patient, Self::Family, Self::LegalRepresentative]
    }
    fn wire_name(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Family => "family",
            Self::LegalRepresentative => "legal_representative",
        }
    }
    fn label(self) -> String {
        match self {
            Self::Patient => "本人 Patient",
            Self::Family => "家族 Family",
            Self::LegalRepresentative => "法定代理人・成年後見人 Legal representative",
        }
        .to_owned()
    }
}

impl WireEnum for InsurerKind {
    fn all() -> &'static [Self] {
        &[Self::Medical, Self::LongTermCare, Self::Other]
    }
    fn wire_name(self) -> &'static str {
        match self {
            Self::Medical => "medical",
            Self::LongTermCare => "long_term_care",
            Self::Other => "other",
        }
    }
    fn label(self) -> String {
        match self {
            Self::Medical => "医療保険 Health insurance",
            Self::LongTermCare => "介護保険 Long-term care insurance",
            Self::Other => "公費・その他 Public or other",
        }
        .to_owned()
    }
}

/// Parses a [`WireEnum`] by wire name; lists every value (with its label) in `--help` and in
/// the error for a wrong value.
#[derive(Debug)]
pub(crate) struct WireEnumParser<T>(PhantomData<T>);

impl<T> Clone for WireEnumParser<T> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<T: WireEnum> WireEnumParser<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: WireEnum> TypedValueParser for WireEnumParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // The standard parser validates and produces clap's usual "possible values" error.
        let name = PossibleValuesParser::new(T::all().iter().map(|v| v.wire_name()))
            .parse_ref(cmd, arg, value)?;
        T::all()
            .iter()
            .copied()
            .find(|v| v.wire_name() == name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::all()
                .iter()
                .map(|v| PossibleValue::new(v.wire_name()).help(v.label())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tsunagu").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_login_with_global_options_anywhere() {
        let cli = parse(&[
            "login",
            "-u",
            "sato",
            "--password-stdin",
            "--json",
            "--server",
            "https://x.jp",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.server.as_deref(), Some("https://x.jp"));
        let Command::Login(args) = cli.command else {
            panic!("not login")
        };
        assert_eq!(args.username, "sato");
        assert!(args.password_stdin);
        assert!(parse(&["login", "-u", "a", "--totp", "1", "--recovery-code", "2"]).is_err());
    }

    #[test]
    fn roles_and_kinds_are_parsed_by_wire_name() {
        let org = OrganisationId::generate();
        let cli = parse(&[
            "admin",
            "invite",
            &org.to_string(),
            "--role",
            "care_manager",
        ])
        .unwrap();
        let Command::Admin(AdminCommand::Invite {
            organisation,
            role,
            valid_hours,
            ..
        }) = cli.command
        else {
            panic!("not invite")
        };
        assert_eq!(
            (organisation, role, valid_hours),
            (org, Role::CareManager, None)
        );

        let cli = parse(&[
            "admin",
            "org",
            "create",
            "あおば",
            "--kind",
            "visiting_nursing_station",
        ])
        .unwrap();
        let Command::Admin(AdminCommand::Org(OrgCommand::Create { kind, .. })) = cli.command else {
            panic!("not org create")
        };
        assert_eq!(kind, OrganisationKind::VisitingNursingStation);

        let err = parse(&["admin", "invite", &org.to_string(), "--role", "doctor"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(err.to_string().contains("physician"), "{err}");
    }

    #[test]
    fn help_lists_roles_with_labels() {
        let mut cmd = Cli::command();
        let invite = cmd
            .find_subcommand_mut("admin")
            .and_then(|admin| admin.find_subcommand_mut("invite"))
            .unwrap();
        let help = invite.render_long_help().to_string();
        assert!(help.contains("care_manager"), "{help}");
        assert!(help.contains("看護師 Nurse"), "{help}");
        assert!(
            Cli::command()
                .render_help()
                .to_string()
                .contains("終了コード Exit codes")
        );
    }

    #[test]
    fn rejects_bad_ids_and_ranges() {
        assert!(parse(&["admin", "user", "show", "not-a-uuid"]).is_err());
        let org = OrganisationId::generate().to_string();
        assert!(
            parse(&[
                "admin",
                "invite",
                &org,
                "--role",
                "nurse",
                "--valid-hours",
                "0"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "admin",
                "invite",
                &org,
                "--role",
                "nurse",
                "--valid-hours",
                "721"
            ])
            .is_err()
        );
        let user = UserId::generate().to_string();
        assert!(
            parse(&["admin", "user", "role", &user, "nurse"]).is_err(),
            "reason is required"
        );
        assert!(parse(&["admin", "user", "role", &user, "nurse", "--reason", "異動"]).is_ok());
        assert!(parse(&["sessions"]).is_ok());
        assert!(parse(&["sessions", "revoke", &SessionId::generate().to_string()]).is_ok());
    }
    #[test]
    fn parses_room_create_with_repeated_insurers() {
        let cli = parse(&[
            "room",
            "create",
            "--name",
            "山田 太郎",
            "--kana",
            "ヤマダ タロウ",
            "--birth",
            "1938-04-01",
            "--insurer",
            "long_term_care:0123456789",
            "--insurer",
            "medical：39-123456",
        ])
        .unwrap();
        let Command::Room(RoomCommand::Create(args)) = cli.command else {
            panic!("not room create")
        };
        assert_eq!(args.birth, time::macros::date!(1938 - 04 - 01));
        assert_eq!(args.address, None);
        assert_eq!(
            args.insurers,
            [
                InsurerNumber {
                    kind: InsurerKind::LongTermCare,
                    number: "0123456789".into()
                },
                InsurerNumber {
                    kind: InsurerKind::Medical,
                    number: "39-123456".into()
                },
            ]
        );
    }

    #[test]
    fn insurer_numbers_are_kind_colon_number() {
        assert_eq!(
            parse_insurer("other: 12 ").unwrap(),
            InsurerNumber {
                kind: InsurerKind::Other,
                number: "12".into()
            }
        );
        for bad in [
            "0123456789",
            "kaigo:0123456789",
            "long-term-care:1",
            "Medical:1",
            ":1",
            "medical:",
            "medical: ",
        ] {
            let err = parse_insurer(bad).unwrap_err();
            assert!(err.contains("KIND:NUMBER"), "{bad:?}: {err}");
        }
        assert!(
            parse_insurer("x:1")
                .unwrap_err()
                .contains("medical, long_term_care, other")
        );
        let err = parse(&[
            "room",
            "create",
            "--name",
            "a",
            "--kana",
            "a",
            "--birth",
            "1938-04-01",
            "--insurer",
            "care:1",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn dates_must_be_iso_and_exist() {
        assert_eq!(
            parse_date("2024-02-29").unwrap(),
            time::macros::date!(2024 - 02 - 29)
        );
        for bad in [
            "1938/04/01",
            "1938-4-1",
            "19380401",
            "昭和13年4月1日",
            "",
            "38-04-01",
        ] {
            let err = parse_date(bad).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad:?}: {err}");
        }
        for impossible in ["2026-02-29", "2026-13-01", "2026-04-31"] {
            let err = parse_date(impossible).unwrap_err();
            assert!(err.contains("no such date"), "{impossible:?}: {err}");
        }
        let room = RoomId::generate().to_string();
        let err = parse(&[
            "room",
            "consent",
            &room,
            "--given-by",
            "family",
            "--giver-name",
            "山田 花子",
            "--obtained-on",
            "2026/11/20",
            "--scope",
            "情報共有",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
    }

    #[test]
    fn parses_consent_and_the_other_room_commands() {
        let room = RoomId::generate();
        let cli = parse(&[
            "room",
            "consent",
            &room.to_string(),
            "--given-by",
            "legal_representative",
            "--giver-name",
            "山田 花子",
            "--obtained-on",
            "2026-11-20",
            "--scope",
            "医療・介護関係者間での情報共有",
            "--document",
            "事務所キャビネット A-3",
        ])
        .unwrap();
        let Command::Room(RoomCommand::Consent(args)) = cli.command else {
            panic!("not room consent")
        };
        assert_eq!(args.room, room);
        assert_eq!(args.given_by, ConsentGiver::LegalRepresentative);
        assert_eq!(args.obtained_on, time::macros::date!(2026 - 11 - 20));
        assert_eq!(args.document.as_deref(), Some("事務所キャビネット A-3"));

        let err = parse(&[
            "room",
            "consent",
            &room.to_string(),
            "--given-by",
            "neighbour",
            "--giver-name",
            "x",
            "--obtained-on",
            "2026-11-20",
            "--scope",
            "x",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(err.to_string().contains("legal_representative"), "{err}");

        let room = room.to_string();
        let user = UserId::generate().to_string();
        let consent = ConsentId::generate().to_string();
        for ok in [
            &["room", "list"][..],
            &["room", "show", &room],
            &["room", "members", &room],
            &["room", "invite", &room, &user],
            &["room", "revoke", &room, &user],
            &["room", "accept", &room],
            &["room", "decline", &room],
            &["room", "leave", &room],
            &["room", "consents", &room],
            &[
                "room",
                "withdraw-consent",
                &room,
                &consent,
                "--reason",
                "本人の希望",
            ],
            &["directory", "山田 太"],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["room", "show", "not-a-uuid"][..],
            &["room", "invite", &room],
            &["room", "invite", &room, "sato"],
            &["room", "withdraw-consent", &room, &consent],
            &["directory"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_post_with_defaults_and_options() {
        let room = RoomId::generate();
        let cli = parse(&["post", &room.to_string(), "熱あり"]).unwrap();
        let Command::Post(args) = cli.command else {
            panic!("not post")
        };
        assert_eq!(
            (
                args.room,
                args.text.as_str(),
                args.urgent,
                args.visibility,
                args.client_id
            ),
            (room, "熱あり", false, VisibilityArg::CareTeam, None)
        );

        let client_id = ClientPostId::generate();
        let cli = parse(&[
            "post",
            &room.to_string(),
            "-",
            "--urgent",
            "--visibility",
            "everyone",
            "--client-id",
            &client_id.to_string(),
        ])
        .unwrap();
        let Command::Post(args) = cli.command else {
            panic!("not post")
        };
        assert_eq!(
            args.text, "-",
            "`-` is the text argument (stdin), not an option"
        );
        assert!(args.urgent);
        assert_eq!(Visibility::from(args.visibility), Visibility::Everyone);
        assert_eq!(args.client_id, Some(client_id));

        // The wire spelling is accepted too; anything else is refused with the choices.
        let cli = parse(&["post", &room.to_string(), "x", "--visibility", "care_team"]).unwrap();
        let Command::Post(args) = cli.command else {
            panic!("not post")
        };
        assert_eq!(Visibility::from(args.visibility), Visibility::CareTeam);
        let err = parse(&["post", &room.to_string(), "x", "--visibility", "family"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(err.to_string().contains("care-team"), "{err}");
        assert!(parse(&["post", &room.to_string(), "x", "--client-id", "abc"]).is_err());
        assert!(parse(&["post", &room.to_string()]).is_err());
    }

    #[test]
    fn parses_attachments_on_posts_and_attachment_get() {
        let room = RoomId::generate();
        let r = room.to_string();
        let cli = parse(&["post", &r, "", "--attach", "a.jpg", "--attach", "b c.pdf"]).unwrap();
        let Command::Post(args) = cli.command else {
            panic!("not post")
        };
        assert_eq!(args.text, "");
        assert_eq!(
            args.attach,
            vec![PathBuf::from("a.jpg"), PathBuf::from("b c.pdf")]
        );
        let cli = parse(&["post", &r, "x"]).unwrap();
        let Command::Post(args) = cli.command else {
            panic!("not post")
        };
        assert!(args.attach.is_empty());

        let attachment = AttachmentId::generate();
        let a = attachment.to_string();
        let cli = parse(&["attachment", "get", &r, &a]).unwrap();
        let Command::Attachment(AttachmentCommand::Get(args)) = cli.command else {
            panic!("not attachment get")
        };
        assert_eq!(
            (args.room, args.attachment, args.output, args.force),
            (room, attachment, None, false)
        );
        let cli = parse(&["attachment", "get", &r, &a, "-o", "-", "--force"]).unwrap();
        let Command::Attachment(AttachmentCommand::Get(args)) = cli.command else {
            panic!("not attachment get")
        };
        assert_eq!((args.output, args.force), (Some(PathBuf::from("-")), true));
        assert!(parse(&["attachment", "get", &r, "not-an-id"]).is_err());
        assert!(parse(&["attachment", "get", &r]).is_err());
    }

    #[test]
    fn sequence_numbers_may_carry_a_hash() {
        assert_eq!(parse_seq("12"), Ok(12));
        assert_eq!(parse_seq("#12"), Ok(12));
        assert_eq!(parse_seq("＃7"), Ok(7));
        for bad in [
            "0",
            "#0",
            "",
            "#",
            "##1",
            "-1",
            "+1",
            "1.5",
            "十二",
            "99999999999999999999",
        ] {
            assert!(parse_seq(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_seq_or_zero("0"), Ok(0));
    }

    #[test]
    fn parses_the_timeline_commands() {
        let room = RoomId::generate();
        let r = room.to_string();

        let Command::History(args) = parse(&["history", &r]).unwrap().command else {
            panic!("not history")
        };
        assert_eq!((args.room, args.after, args.limit), (room, 0, None));
        let Command::History(args) = parse(&["history", &r, "--after", "#40", "--limit", "500"])
            .unwrap()
            .command
        else {
            panic!("not history")
        };
        assert_eq!((args.after, args.limit), (40, Some(500)));

        let Command::Tail(args) = parse(&["tail", &r]).unwrap().command else {
            panic!("not tail")
        };
        assert_eq!((args.after, args.poll, args.interval), (None, false, 3));
        let Command::Tail(args) = parse(&["tail", &r, "--after", "0", "--poll"])
            .unwrap()
            .command
        else {
            panic!("not tail")
        };
        assert_eq!((args.after, args.poll, args.interval), (Some(0), true, 3));
        let Command::Tail(args) = parse(&["tail", &r, "--poll", "--interval", "10"])
            .unwrap()
            .command
        else {
            panic!("not tail")
        };
        assert_eq!((args.poll, args.interval), (true, 10));

        let Command::Edit(args) = parse(&["edit", &r, "#12", "37.5℃", "--reason", "誤記"])
            .unwrap()
            .command
        else {
            panic!("not edit")
        };
        assert_eq!(
            (args.seq, args.text.as_str(), args.reason.as_str()),
            (12, "37.5℃", "誤記")
        );
        let Command::Read { seq, .. } = parse(&["read", &r]).unwrap().command else {
            panic!("not read")
        };
        assert_eq!(seq, None);
        let Command::Read { seq, .. } = parse(&["read", &r, "9"]).unwrap().command else {
            panic!("not read")
        };
        assert_eq!(seq, Some(9));

        for ok in [
            &["ack", &r, "12"][..],
            &["acks", &r, "#12"],
            &["versions", &r, "12"],
            &["delete", &r, "12", "--reason", "重複"],
            &["edit", &r, "12", "-", "--reason", "誤記"],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["history", &r, "--limit", "0"][..],
            &["history", &r, "--limit", "501"],
            &["history", &r, "--after", "x"],
            &["tail", &r, "--poll", "--interval", "0"],
            // The interval is for polling only.
            &["tail", &r, "--interval", "10"],
            &["ack", &r],
            &["ack", &r, "0"],
            &["acks", "not-a-room", "1"],
            &["edit", &r, "12", "text"],
            &["delete", &r, "12"],
            &["read", &r, "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_audit_commands() {
        let user = UserId::generate();
        let room = RoomId::generate();
        let cli = parse(&[
            "audit",
            "search",
            "--user",
            &user.to_string(),
            "--room",
            &room.to_string(),
            "--action",
            "auth.",
            "--outcome",
            "refused",
            "--from",
            "2026-11-01",
            "--until",
            "2026-11-21T09:00:00Z",
            "--limit",
            "1000",
            "--all",
            "--json",
        ])
        .unwrap();
        assert!(cli.global.json);
        let Command::Audit(AuditCommand::Search(args)) = cli.command else {
            panic!("not audit search")
        };
        assert_eq!(
            (args.filters.user, args.filters.room, args.limit, args.all),
            (Some(user), Some(room), Some(1000), true)
        );
        assert_eq!(args.filters.action.as_deref(), Some("auth."));
        assert_eq!(args.filters.outcome, Some(OutcomeArg::Refused));
        assert_eq!(
            args.filters.from.as_deref(),
            Some("2026-11-01T00:00:00+09:00"),
            "a date is its midnight in Japan"
        );
        assert_eq!(args.filters.until.as_deref(), Some("2026-11-21T09:00:00Z"));
        let Command::Audit(AuditCommand::Search(args)) =
            parse(&["audit", "search"]).unwrap().command
        else {
            panic!("not audit search")
        };
        assert_eq!(
            (args.limit, args.all, args.filters.outcome),
            (None, false, None)
        );

        let cli = parse(&[
            "audit", "export", "--format", "fhir", "-o", "a.ndjson", "--force",
        ])
        .unwrap();
        let Command::Audit(AuditCommand::Export(args)) = cli.command else {
            panic!("not audit export")
        };
        assert_eq!(
            (args.format, args.output, args.force, args.limit),
            (
                ExportFormatArg::Fhir,
                Some(PathBuf::from("a.ndjson")),
                true,
                None
            )
        );
        assert_eq!(
            [
                ExportFormatArg::Csv,
                ExportFormatArg::Jsonl,
                ExportFormatArg::Fhir
            ]
            .map(ExportFormatArg::as_str),
            ["csv", "jsonl", "fhir"]
        );

        for (name, kind) in [
            ("outside-care-team", ReportKind::OutsideCareTeam),
            ("out-of-hours", ReportKind::OutOfHours),
            ("bulk-exports", ReportKind::BulkExports),
            ("failed-logins", ReportKind::FailedLogins),
            ("many-refusals", ReportKind::ManyRefusals),
            ("clock-unsynchronised", ReportKind::ClockUnsynchronised),
            // The wire spelling too.
            ("failed_logins", ReportKind::FailedLogins),
        ] {
            let Command::Audit(AuditCommand::Report(args)) =
                parse(&["audit", "report", name]).unwrap().command
            else {
                panic!("not audit report")
            };
            assert_eq!(ReportKind::from(args.kind), kind, "{name}");
        }
        let Command::Audit(AuditCommand::Report(args)) = parse(&[
            "audit",
            "report",
            "many-refusals",
            "--from",
            "2026-10-01T00:00:00+09:00",
        ])
        .unwrap()
        .command
        else {
            panic!("not audit report")
        };
        assert_eq!(
            (args.from.as_deref(), args.until),
            (Some("2026-10-01T00:00:00+09:00"), None)
        );

        let Command::Audit(AuditCommand::SignOff(args)) = parse(&[
            "audit",
            "sign-off",
            "--from",
            "2026-10-01",
            "--until",
            "2026-11-01",
            "--findings",
            "不審なアクセスなし",
        ])
        .unwrap()
        .command
        else {
            panic!("not audit sign-off")
        };
        assert_eq!(
            (
                args.from.as_str(),
                args.until.as_str(),
                args.findings.as_deref(),
                args.findings_file
            ),
            (
                "2026-10-01T00:00:00+09:00",
                "2026-11-01T00:00:00+09:00",
                Some("不審なアクセスなし"),
                None
            )
        );
        for ok in [
            &["audit", "verify"][..],
            &["audit", "reviews"],
            &["clock"],
            &["audit", "export", "--format", "csv"],
            &[
                "audit",
                "export",
                "--format",
                "jsonl",
                "--action",
                "timeline.read",
            ],
            &["audit", "export", "--format", "csv", "--limit", "100000"],
            &[
                "audit",
                "sign-off",
                "--from",
                "2026-10-01",
                "--until",
                "2026-11-01",
                "--findings-file",
                "-",
            ],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["audit"][..],
            &["audit", "search", "--limit", "0"],
            &["audit", "search", "--limit", "1001"],
            &["audit", "search", "--outcome", "ok"],
            &["audit", "search", "--from", "yesterday"],
            &["audit", "search", "--until", "2026-02-30"],
            &["audit", "search", "--user", "sato"],
            &["audit", "search", "--room", "not-a-room"],
            &["audit", "export"],
            &["audit", "export", "--format", "xlsx"],
            &["audit", "export", "--format", "csv", "--limit", "100001"],
            // --force is about a file.
            &["audit", "export", "--format", "csv", "--force"],
            &["audit", "report"],
            &["audit", "report", "everything"],
            &[
                "audit",
                "sign-off",
                "--from",
                "2026-10-01",
                "--until",
                "2026-11-01",
            ],
            &[
                "audit",
                "sign-off",
                "--until",
                "2026-11-01",
                "--findings",
                "x",
            ],
            &[
                "audit",
                "sign-off",
                "--from",
                "2026-10-01",
                "--until",
                "2026-11-01",
                "--findings",
                "x",
                "--findings-file",
                "f.txt",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instants_are_rfc3339_or_dates_in_japan() {
        assert_eq!(
            parse_instant(" 2026-11-21T09:00:00.5+09:00 ").unwrap(),
            "2026-11-21T09:00:00.5+09:00"
        );
        assert_eq!(
            parse_instant("2024-02-29").unwrap(),
            "2024-02-29T00:00:00+09:00"
        );
        assert!(
            parse_instant("2026-02-29")
                .unwrap_err()
                .contains("no such date")
        );
        for bad in [
            "",
            "yesterday",
            "2026/11/21",
            "2026-11-21 09:00",
            "2026-11-21T09:00:00",
        ] {
            assert!(
                parse_instant(bad).unwrap_err().contains("RFC 3339"),
                "{bad:?}"
            );
        }
        let help = Cli::command()
            .find_subcommand_mut("audit")
            .and_then(|audit| audit.find_subcommand_mut("report"))
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("failed-logins"), "{help}");
        assert!(help.contains("ケアチーム外"), "{help}");
    }

    #[test]
    fn parses_form_send_with_a_role_or_members() {
        let room = RoomId::generate();
        let r = room.to_string();
        let cli = parse(&[
            "form",
            "send",
            &r,
            "admission_notice",
            "--data",
            "data.json",
            "--to",
            "physician",
        ])
        .unwrap();
        let Command::Form(FormCommand::Send(args)) = cli.command else {
            panic!("not form send")
        };
        assert_eq!(args.room, room);
        assert_eq!(args.template, "admission_notice");
        assert_eq!(args.data, PathBuf::from("data.json"));
        assert_eq!(args.to, [RecipientArg::Role(Role::Physician)]);
        assert_eq!(
            (
                args.due,
                args.everyone,
                args.template_version,
                args.client_id
            ),
            (None, false, None, None)
        );

        let (a, b) = (UserId::generate(), UserId::generate());
        let client_id = ClientPostId::generate();
        let cli = parse(&[
            "form",
            "send",
            &r,
            "admission_notice",
            "--data",
            "-",
            "--to",
            &a.to_string(),
            "--to",
            &b.to_string(),
            "--due",
            "2026-11-24",
            "--everyone",
            "--template-version",
            "2",
            "--client-id",
            &client_id.to_string(),
        ])
        .unwrap();
        let Command::Form(FormCommand::Send(args)) = cli.command else {
            panic!("not form send")
        };
        assert_eq!(args.data, PathBuf::from("-"));
        assert_eq!(args.to, [RecipientArg::User(a), RecipientArg::User(b)]);
        assert_eq!(args.due, Some(time::macros::date!(2026 - 11 - 24)));
        assert!(args.everyone);
        assert_eq!(
            (args.template_version, args.client_id),
            (Some(2), Some(client_id))
        );

        let err = parse(&[
            "form", "send", &r, "x", "--data", "d.json", "--to", "doctor",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let message = err.to_string();
        assert!(message.contains("care_manager"), "{message}");
        assert!(message.contains("user id"), "{message}");
        for bad in [
            &["form", "send", &r, "x", "--data", "d.json"][..],
            &["form", "send", &r, "x", "--to", "nurse"],
            &["form", "send", &r, "--data", "d.json", "--to", "nurse"],
            &[
                "form",
                "send",
                &r,
                "x",
                "--data",
                "d",
                "--to",
                "nurse",
                "--due",
                "2026/11/24",
            ],
            &[
                "form",
                "send",
                &r,
                "x",
                "--data",
                "d",
                "--to",
                "nurse",
                "--template-version",
                "0",
            ],
            &[
                "form",
                "send",
                "not-a-room",
                "x",
                "--data",
                "d",
                "--to",
                "nurse",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_recipient(" nurse "),
            Ok(RecipientArg::Role(Role::Nurse))
        );
        assert_eq!(parse_recipient(&a.to_string()), Ok(RecipientArg::User(a)));
    }

    #[test]
    fn parses_the_other_form_commands() {
        let form = FormId::generate();
        let f = form.to_string();
        let room = RoomId::generate().to_string();

        let Command::Form(FormCommand::Show(args)) = parse(&["form", "show", &f]).unwrap().command
        else {
            panic!("not form show")
        };
        assert_eq!((args.id, args.version, args.fhir), (form, None, false));
        assert_eq!(
            (args.print.pdf, args.print.html, args.print.force),
            (None, None, false)
        );
        let Command::Form(FormCommand::Show(args)) = parse(&[
            "form",
            "show",
            &f,
            "--version",
            "2",
            "--pdf",
            "a.pdf",
            "--html",
            "a.html",
            "--chromium",
            "/opt/chromium/chrome",
            "--force",
        ])
        .unwrap()
        .command
        else {
            panic!("not form show")
        };
        assert_eq!(args.version, Some(2));
        assert_eq!(args.print.pdf, Some(PathBuf::from("a.pdf")));
        assert_eq!(args.print.html, Some(PathBuf::from("a.html")));
        assert_eq!(
            args.print.chromium,
            Some(PathBuf::from("/opt/chromium/chrome"))
        );
        assert!(args.print.force);

        let Command::Form(FormCommand::Correct(args)) = parse(&[
            "form", "correct", &f, "--data", "d.json", "--reason", "誤記",
        ])
        .unwrap()
        .command
        else {
            panic!("not form correct")
        };
        assert_eq!((args.reason.as_str(), args.base_version), ("誤記", None));
        let Command::Form(FormCommand::Templates { example }) =
            parse(&["form", "templates", "--example", "admission_notice"])
                .unwrap()
                .command
        else {
            panic!("not form templates")
        };
        assert_eq!(example.as_deref(), Some("admission_notice"));
        let Command::Form(FormCommand::Template(TemplateCommand::Show { key, version, fhir })) =
            parse(&[
                "form",
                "template",
                "show",
                "reply",
                "--version",
                "1",
                "--fhir",
            ])
            .unwrap()
            .command
        else {
            panic!("not form template show")
        };
        assert_eq!((key.as_str(), version, fhir), ("reply", Some(1), true));

        for ok in [
            &["form", "templates"][..],
            &["form", "template", "add", "template.json"],
            &["form", "template", "add", "-"],
            &["form", "list", &room],
            &["form", "inbox", "--json"],
            &["form", "show", &f, "--fhir", "--version", "1"],
            &["form", "show", &f, "--html", "-"],
            &["form", "answer", &f, "--data", "reply.json"],
            &["form", "ack", &f],
            &[
                "form",
                "correct",
                &f,
                "--data",
                "d.json",
                "--reason",
                "誤記",
                "--base-version",
                "3",
            ],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["form"][..],
            &["form", "templates", "--example"],
            &["form", "template", "add"],
            &["form", "list"],
            &["form", "show", "not-a-form"],
            &["form", "show", &f, "--version", "0"],
            // FHIR is printed, not saved.
            &["form", "show", &f, "--fhir", "--pdf", "a.pdf"],
            &["form", "show", &f, "--fhir", "--html", "a.html"],
            // --force is about a file.
            &["form", "show", &f, "--force"],
            &["form", "answer", &f],
            &["form", "ack"],
            &["form", "correct", &f, "--data", "d.json"],
            &["form", "correct", &f, "--reason", "誤記"],
            &[
                "form",
                "correct",
                &f,
                "--data",
                "d",
                "--reason",
                "x",
                "--base-version",
                "0",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_sheet_commands() {
        let room = RoomId::generate();
        let r = room.to_string();
        let Command::Sheet(SheetCommand::Show(args)) =
            parse(&["sheet", "show", &r]).unwrap().command
        else {
            panic!("not sheet show")
        };
        assert_eq!((args.room, args.history), (room, false));
        let Command::Sheet(SheetCommand::Update(args)) = parse(&[
            "sheet",
            "update",
            &r,
            "--data",
            "sheet.json",
            "--reason",
            "退院",
            "--base-version",
            "0",
        ])
        .unwrap()
        .command
        else {
            panic!("not sheet update")
        };
        assert_eq!(args.data, PathBuf::from("sheet.json"));
        assert_eq!(
            (args.reason.as_deref(), args.base_version),
            (Some("退院"), Some(0))
        );
        for ok in [
            &["sheet", "show", &r, "--history"][..],
            &["sheet", "show", &r, "--pdf", "s.pdf", "--force"],
            &["sheet", "show", &r, "--html", "s.html", "--pdf", "s.pdf"],
            &["sheet", "update", &r, "--data", "-"],
            &["sheet", "confirm", &r, "--json"],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["sheet"][..],
            &["sheet", "show"],
            &["sheet", "show", &r, "--history", "--pdf", "s.pdf"],
            &["sheet", "show", &r, "--force"],
            &["sheet", "update", &r],
            &["sheet", "update", &r, "--data", "d", "--base-version", "-1"],
            &["sheet", "confirm"],
            &["sheet", "confirm", "not-a-room"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wire_names_match_the_protocol() {
        fn check<T: WireEnum + serde::Serialize>() {
            for value in T::all() {
                assert_eq!(
                    serde_json::to_value(value).unwrap(),
                    serde_json::json!(value.wire_name())
                );
            }
        }
        check::<ConsentGiver>();
        check::<InsurerKind>();
    }
}
