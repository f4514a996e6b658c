//! The `tsunagu` binary as a process: help, version, usage errors and the documented exit codes
//! for the failures that need no server. The full walk against a real server is in the
//! end-to-end suite (`tests/e2e/cli.rs`); this file also makes `cargo test --workspace` build
//! the binary that suite runs.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `tsunagu` with `args` and `stdin` (empty if `None`), without the environment variables
/// that could point it at a real configuration or server.
fn tsunagu(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsunagu"))
        .args(args)
        .env_remove("TSUNAGU_SERVER")
        .env_remove("TSUNAGU_CONFIG_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    let output = tsunagu(&["--help"], None);
    assert_eq!(code(&output), 0);
    let help = text(&output.stdout);
    for command in [
        "login",
        "logout",
        "whoami",
        "sessions",
        "password",
        "totp",
        "accept-invitation",
        "admin",
        "room",
        "directory",
        "post",
        "history",
        "tail",
        "ack",
        "acks",
        "edit",
        "delete",
        "versions",
        "read",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "{command} is not listed:\n{help}"
        );
    }
    assert!(help.contains("終了コード Exit codes"), "{help}");
    for (exit, words) in [
        (0, "success"),
        (1, "other error"),
        (2, "usage error"),
        (3, "未ログイン"),
        (4, "権限なし"),
        (5, "not found"),
        (6, "invalid input or conflict"),
        (7, "server unreachable"),
        (8, "account locked"),
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{exit}  "))
                    && line.contains(words)),
            "exit code {exit} ({words}) is not documented:\n{help}"
        );
    }
}

#[test]
fn subcommand_help_lists_roles_and_kinds_by_wire_name_and_label() {
    let output = tsunagu(&["admin", "invite", "--help"], None);
    assert_eq!(code(&output), 0);
    let help = text(&output.stdout);
    assert!(
        help.contains("nurse") && help.contains("看護師 Nurse"),
        "{help}"
    );

    let output = tsunagu(&["admin", "org", "create", "--help"], None);
    assert_eq!(code(&output), 0);
    let help = text(&output.stdout);
    assert!(help.contains("visiting_nursing_station"), "{help}");
}

#[test]
fn version_names_the_program_and_its_version() {
    let output = tsunagu(&["--version"], None);
    assert_eq!(code(&output), 0);
    assert_eq!(
        text(&output.stdout).trim(),
        format!("tsunagu {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = tsunagu(&["frobnicate"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("frobnicate"));

    // A role that does not exist, and a missing required option.
    let org = "01a1fea3-100b-74ec-a746-bb66a7b64778";
    let output = tsunagu(&["admin", "invite", org, "--role", "surgeon"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("surgeon"));
    let output = tsunagu(&["login", "--password-stdin"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("--username"));
}

#[test]
fn bad_dates_and_insurance_numbers_are_usage_errors() {
    let base = [
        "room",
        "create",
        "--name",
        "山田 太郎",
        "--kana",
        "ヤマダ タロウ",
    ];
    let output = tsunagu(&[&base[..], &["--birth", "1938/04/01"]].concat(), None);
    assert_eq!(code(&output), 2);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("YYYY-MM-DD"), "{stderr}");

    let output = tsunagu(&[&base[..], &["--birth", "1938-02-30"]].concat(), None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("no such date"));

    let output = tsunagu(
        &[
            &base[..],
            &["--birth", "1938-04-01", "--insurer", "kaigo:1"],
        ]
        .concat(),
        None,
    );
    assert_eq!(code(&output), 2);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("long_term_care"), "{stderr}");

    let output = tsunagu(&["room", "consent", "--help"], None);
    assert_eq!(code(&output), 0);
    let help = text(&output.stdout);
    assert!(help.contains("legal_representative"), "{help}");
    assert!(help.contains("家族 Family"), "{help}");
}

#[test]
fn timeline_usage_errors_exit_2_and_an_empty_text_exits_6_before_anything_is_sent() {
    let room = "01a1fea3-100b-74ec-a746-bb66a7b64778";
    let output = tsunagu(&["post", room, "x", "--visibility", "family"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("care-team"));
    let output = tsunagu(&["ack", room, "twelve"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("#12"));
    let output = tsunagu(&["edit", room, "3", "x"], None);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("--reason"));

    // An empty text on stdin is refused locally (nothing listens on the server either).
    let dir = tempfile::tempdir().unwrap();
    let output = tsunagu(
        &[
            "--config-dir",
            dir.path().to_str().unwrap(),
            "--server",
            "http://127.0.0.1:9",
            "post",
            room,
            "-",
        ],
        Some("\n\n"),
    );
    assert_eq!(code(&output), 6);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("本文が空です"), "{stderr}");
    assert!(stderr.contains("The text is empty"), "{stderr}");

    let output = tsunagu(&["post", "--help"], None);
    assert_eq!(code(&output), 0);
    let help = text(&output.stdout);
    for expected in [
        "care-team",
        "everyone",
        "--urgent",
        "--client-id",
        "標準入力",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}

#[test]
fn a_command_needing_a_login_without_one_exits_3_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tsunagu");
    let config = config.to_str().unwrap();
    let room = "01a1fea3-100b-74ec-a746-bb66a7b64778";
    for args in [
        &["whoami"][..],
        &["sessions", "--json"],
        &["admin", "org", "list"],
        &["logout"],
        &["room", "list"],
        &["directory", "山田"],
        &["history", room],
        &["tail", room],
        &["ack", room, "1"],
        &["read", room],
    ] {
        let output = tsunagu(&[&["--config-dir", config], args].concat(), None);
        assert_eq!(code(&output), 3, "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("ログインしていません"), "{stderr}");
        assert!(stderr.contains("Not logged in"), "{stderr}");
        assert!(stderr.contains("tsunagu login"), "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!Path::new(config).exists(), "nothing is created");
}

#[test]
fn an_unreachable_server_exits_7() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = format!("http://127.0.0.1:{port}");
    let output = tsunagu(
        &[
            "--config-dir",
            dir.path().to_str().unwrap(),
            "--server",
            &server,
            "login",
            "--username",
            "nurse.sato",
            "--password-stdin",
        ],
        Some("Sato-Hanako-pw-2026!\n"),
    );
    assert_eq!(code(&output), 7);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("サーバーに接続できません"), "{stderr}");
    assert!(stderr.contains(&server), "{stderr}");
    assert!(!stderr.contains("Sato-Hanako-pw-2026!"), "{stderr}");
    assert!(!dir.path().join("credentials.toml").exists());
}

#[test]
fn an_empty_password_on_stdin_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let output = tsunagu(
        &[
            "--config-dir",
            dir.path().to_str().unwrap(),
            // Nothing listens here either; the input check comes first.
            "--server",
            "http://127.0.0.1:9",
            "login",
            "-u",
            "nurse.sato",
            "--password-stdin",
        ],
        Some("\n"),
    );
    assert_eq!(code(&output), 6);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("パスワードが空です"), "{stderr}");
    assert!(stderr.contains("The password is empty"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_credentials_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.toml");
    std::fs::write(
        &file,
        "server = \"http://127.0.0.1:9\"\nusername = \"nurse.sato\"\n\
         session_id = \"01a1fea3-23ec-740a-8a5d-167e53844eab\"\npending = []\n\
         access_token = \"a\"\nrefresh_token = \"r\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = tsunagu(
        &["--config-dir", dir.path().to_str().unwrap(), "whoami"],
        None,
    );
    assert_eq!(code(&output), 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("認証情報ファイル"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
