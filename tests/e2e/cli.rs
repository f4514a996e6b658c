//! The `tsunagu` command-line client against the real server, as a script would use it: each
//! person has a config directory of their own, passwords go in on stdin (never on the command
//! line), TOTP codes are computed from the secret `totp enrol --no-confirm --json` shows.
//!
//! Bootstrap admin: one-time password → login → pending steps → password change → TOTP →
//! organisation → invitation. Nurse: accepts it → TOTP → logout → login needs `--totp` →
//! sessions, whoami → wrong password and an administrator's command are refused → logout
//! deletes the credentials. Along the way: exit codes as `tsunagu --help` documents them,
//! `--json` output is JSON, the credentials file is private and never holds a password, and
//! no password or token is ever printed or logged.

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tsunagu_client::Tokens;
use tsunagu_e2e::server::{TestServer, binary};
use tsunagu_protocol::ErrorCode;

use crate::support::{Authenticator, assert_code};

/// How a person's `tsunagu` finds its config directory.
#[derive(Clone, Copy)]
pub enum ConfigBy {
    /// `--config-dir DIR`.
    Option,
    /// `TSUNAGU_CONFIG_DIR=DIR`.
    Environment,
}

/// One person's `tsunagu`: its own config directory (created by the CLI on first login), the
/// test server, and everything it printed and stored.
pub struct Tsunagu {
    _home: tempfile::TempDir,
    config_dir: PathBuf,
    server: String,
    config_by: ConfigBy,
    /// stdout and stderr of every run.
    transcript: RefCell<Vec<String>>,
    /// Every access and refresh token seen in the credentials file.
    tokens: RefCell<Vec<String>>,
}

/// A finished `tsunagu` run.
pub struct Ran {
    args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the exit code.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "tsunagu {:?} exited {} instead of {code}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "tsunagu {:?}: stdout is not JSON ({err}):\n{}",
                self.args, self.stdout
            )
        })
    }

    /// Asserts that stderr names the error `code` (the report's English line ends with it).
    #[track_caller]
    pub fn reports(self, code: ErrorCode) -> Self {
        assert!(
            self.stderr.contains(&format!("({})", code.as_str())),
            "tsunagu {:?}: expected {code} on stderr:\n{}",
            self.args,
            self.stderr
        );
        self
    }
}

/// The credentials file, as far as the test needs it.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    server: String,
    username: String,
    session_id: String,
    access_token: String,
    refresh_token: String,
}

impl Stored {
    fn tokens(&self) -> Tokens {
        Tokens {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            session_id: self.session_id.parse().unwrap(),
            pending: Vec::new(),
        }
    }
}

/// `key = "value"` from the TOML credentials file (the values the CLI writes need no escapes).
fn toml_string(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key} = \"")))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in the credentials file:\n{text}"))
        .to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

impl Tsunagu {
    pub fn new(server: &TestServer, config_by: ConfigBy) -> Self {
        let home = tempfile::tempdir().unwrap();
        // Not created yet: the CLI must create it, privately.
        let config_dir = home.path().join("tsunagu");
        Tsunagu {
            _home: home,
            config_dir,
            server: server.base_url.clone(),
            config_by,
            transcript: RefCell::default(),
            tokens: RefCell::default(),
        }
    }

    fn credentials_path(&self) -> PathBuf {
        self.config_dir.join("credentials.toml")
    }

    /// Runs `tsunagu --server URL ARGS` with `stdin` (an empty stdin if `None`; never a
    /// terminal, so the CLI cannot prompt).
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        self.run_in(None, args, stdin).await
    }

    /// [`Tsunagu::run`] in the working directory `dir` (the test's own if `None`).
    pub async fn run_in(&self, dir: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut command = Command::new(binary("tsunagu"));
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
            .args(["--server", &self.server])
            .args(args)
            .env_remove("TSUNAGU_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match self.config_by {
            ConfigBy::Option => {
                command
                    .arg("--config-dir")
                    .arg(&self.config_dir)
                    .env_remove("TSUNAGU_CONFIG_DIR");
            }
            ConfigBy::Environment => {
                command.env("TSUNAGU_CONFIG_DIR", &self.config_dir);
            }
        }
        let mut child = command.spawn().expect("spawn tsunagu");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        drop(pipe);
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("tsunagu {args:?} did not finish within 60 s"))
            .unwrap();
        let ran = Ran {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: output.status.code().expect("tsunagu exited normally"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        if args.contains(&"--json") {
            // stdout holds the JSON value and nothing else, or nothing at all on failure.
            if ran.code == 0 {
                ran.json();
            } else {
                assert!(ran.stdout.is_empty(), "{args:?}: {}", ran.stdout);
            }
        }
        {
            let mut transcript = self.transcript.borrow_mut();
            transcript.push(ran.stdout.clone());
            transcript.push(ran.stderr.clone());
        }
        if let Some(stored) = self.stored() {
            let mut tokens = self.tokens.borrow_mut();
            tokens.push(stored.access_token);
            tokens.push(stored.refresh_token);
        }
        ran
    }

    /// The stored login, if there is one.
    fn stored(&self) -> Option<Stored> {
        let text = match std::fs::read_to_string(self.credentials_path()) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => panic!("could not read the credentials: {err}"),
        };
        Some(Stored {
            server: toml_string(&text, "server"),
            username: toml_string(&text, "username"),
            session_id: toml_string(&text, "session_id"),
            access_token: toml_string(&text, "access_token"),
            refresh_token: toml_string(&text, "refresh_token"),
        })
    }

    /// Asserts that the stored login is private (file 0600 alone in a 0700 directory), belongs
    /// to `username` on this server and holds none of `passwords`; returns it.
    #[track_caller]
    fn assert_private_login(&self, username: &str, passwords: &[&str]) -> Stored {
        let path = self.credentials_path();
        assert_eq!(mode(&self.config_dir), 0o700, "config directory mode");
        assert_eq!(mode(&path), 0o600, "credentials file mode");
        let names: Vec<_> = std::fs::read_dir(&self.config_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["credentials.toml"], "no temporary files are left");
        let text = std::fs::read_to_string(&path).unwrap();
        for password in passwords {
            assert!(
                !text.contains(password),
                "the credentials file holds a password"
            );
        }
        let stored = self.stored().unwrap();
        assert_eq!(
            (stored.server.as_str(), stored.username.as_str()),
            (self.server.as_str(), username)
        );
        assert!(stored.access_token.starts_with("eyJ"), "a JWT access token");
        assert!(stored.refresh_token.len() >= 32);
        stored
    }
}

/// `tsunagu totp enrol --no-confirm --json`, then `totp confirm CODE --json`: the authenticator
/// and the recovery codes.
async fn enrol_totp(person: &Tsunagu, username: &str) -> (Authenticator, String, Vec<String>) {
    let enrolment = person
        .run(&["totp", "enrol", "--no-confirm", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(
        (&enrolment["digits"], &enrolment["period_seconds"]),
        (&json!(6), &json!(30))
    );
    let secret = enrolment["secret_base32"].as_str().unwrap().to_owned();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!("otpauth://totp/Tsunagu:{username}?")) && uri.contains(&secret),
        "{uri}"
    );
    let mut authenticator = Authenticator::from_base32(&secret);

    // A wrong code is refused as a failed authentication; the enrolment stays open.
    person
        .run(&["totp", "confirm", &authenticator.wrong_code()], None)
        .await
        .expect(3)
        .reports(ErrorCode::TotpInvalid);

    let code = authenticator.next_code().await;
    let confirmed = person
        .run(&["totp", "confirm", &code, "--json"], None)
        .await
        .expect(0)
        .json();
    let recovery_codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery_codes.len(), 10);

    let me = person
        .run(&["whoami", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(me["pending"], json!([]));
    assert_eq!(me["user"]["totp_enabled"], json!(true));
    (authenticator, secret, recovery_codes)
}

pub async fn run(server: TestServer) {
    // ----- The bootstrap administrator -----
    let one_time = server.create_system_admin("admin", "システム管理者").await;
    let admin = Tsunagu::new(&server, ConfigBy::Option);
    let admin_login = ["login", "--username", "admin", "--password-stdin"];

    let ran = admin
        .run(
            &[&admin_login[..], &["--json"]].concat(),
            Some(&format!("{one_time}\n")),
        )
        .await
        .expect(0);
    let login = ran.json();
    assert_eq!(login["username"], json!("admin"));
    assert_eq!(login["server"], json!(server.base_url));
    assert_eq!(login["pending"], json!(["change_password", "enrol_totp"]));
    assert!(login.get("access_token").is_none() && login.get("refresh_token").is_none());
    // With --json the next steps go to stderr.
    assert!(ran.stderr.contains("tsunagu password"), "{}", ran.stderr);
    assert!(ran.stderr.contains("tsunagu totp enrol"), "{}", ran.stderr);
    let stored = admin.assert_private_login("admin", &[&one_time]);
    assert_eq!(json!(stored.session_id), login["session_id"]);

    let me = admin
        .run(&["whoami", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(me["pending"], json!(["change_password", "enrol_totp"]));
    assert_eq!(me["session_id"], login["session_id"]);
    assert_eq!(
        (&me["user"]["username"], &me["user"]["role"]),
        (&json!("admin"), &json!("system_admin"))
    );
    assert_eq!(me["user"]["must_change_password"], json!(true));

    // Until the steps are done, other commands are refused with exit 4 and a hint.
    let refused = admin
        .run(&["admin", "org", "list"], None)
        .await
        .expect(4)
        .reports(ErrorCode::PasswordChangeRequired);
    assert!(refused.stderr.contains("tsunagu password"));

    // A weak new password is invalid input (6); a good one starts a new session.
    let admin_password = "Midori-no-Kaze-2026!";
    admin
        .run(
            &["password", "--stdin"],
            Some(&format!("{one_time}\npassword1\n")),
        )
        .await
        .expect(6)
        .reports(ErrorCode::WeakPassword);
    let changed = admin
        .run(
            &["password", "--stdin", "--json"],
            Some(&format!("{one_time}\n{admin_password}\n")),
        )
        .await
        .expect(0)
        .json();
    assert_eq!(changed["pending"], json!(["enrol_totp"]));
    assert_ne!(changed["session_id"], login["session_id"]);
    let stored_after_change = admin.assert_private_login("admin", &[&one_time, admin_password]);
    assert_eq!(json!(stored_after_change.session_id), changed["session_id"]);
    // The password change ended the first session.
    assert_code(
        server.client().authed(stored.tokens()).me().await,
        ErrorCode::SessionExpired,
    );
    admin
        .run(&["admin", "org", "list"], None)
        .await
        .expect(4)
        .reports(ErrorCode::TotpEnrolmentRequired);

    let (_, admin_totp_secret, admin_recovery_codes) = enrol_totp(&admin, "admin").await;

    let org = admin
        .run(
            &[
                "admin",
                "org",
                "create",
                "みどり訪問看護ステーション",
                "--kind",
                "visiting_nursing_station",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(org["name"], json!("みどり訪問看護ステーション"));
    assert_eq!(org["kind"], json!("visiting_nursing_station"));
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert_eq!(org["require_totp_for_all"], json!(false));
    let updated = admin
        .run(
            &[
                "admin",
                "org",
                "update",
                &org_id,
                "--require-totp-for-all",
                "true",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(updated["require_totp_for_all"], json!(true));
    assert_eq!(updated["name"], json!("みどり訪問看護ステーション"));

    let created = admin
        .run(
            &[
                "admin",
                "invite",
                &org_id,
                "--role",
                "nurse",
                "--name",
                "佐藤 花子",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let invitation = &created["invitation"];
    assert_eq!(
        (
            &invitation["organisation_id"],
            &invitation["role"],
            &invitation["status"]
        ),
        (&json!(org_id), &json!("nurse"), &json!("pending"))
    );
    let code = created["code"].as_str().unwrap().to_owned();

    // ----- The nurse, whose config directory comes from TSUNAGU_CONFIG_DIR -----
    let nurse = Tsunagu::new(&server, ConfigBy::Environment);
    let nurse_password = "Sato-Hanako-houmon-2026!";
    let nurse_stdin = format!("{nurse_password}\n");
    let accepted = nurse
        .run(
            &[
                "accept-invitation",
                "--code",
                &code,
                "--username",
                "nurse.sato",
                "--display-name",
                "佐藤 花子",
                "--password-stdin",
                "--json",
            ],
            Some(&nurse_stdin),
        )
        .await
        .expect(0)
        .json();
    assert_eq!(accepted["username"], json!("nurse.sato"));
    assert_eq!(accepted["pending"], json!(["enrol_totp"]));
    nurse.assert_private_login("nurse.sato", &[nurse_password]);

    // The code works once; a refused acceptance stores nothing.
    let stranger = Tsunagu::new(&server, ConfigBy::Option);
    stranger
        .run(
            &[
                "accept-invitation",
                "--code",
                &code,
                "--username",
                "someone.else",
                "--display-name",
                "別人",
                "--password-stdin",
            ],
            Some("a-Different-pass-2026\n"),
        )
        .await
        .expect(6)
        .reports(ErrorCode::InvitationInvalid);
    assert!(!stranger.credentials_path().exists());

    let (mut nurse_app, nurse_totp_secret, nurse_recovery_codes) =
        enrol_totp(&nurse, "nurse.sato").await;

    let enrolled = nurse.stored().unwrap();
    let ran = nurse.run(&["logout"], None).await.expect(0);
    assert!(ran.stdout.contains("ログアウトしました"), "{}", ran.stdout);
    assert!(!nurse.credentials_path().exists());
    assert_code(
        server.client().authed(enrolled.tokens()).me().await,
        ErrorCode::SessionExpired,
    );

    // Without a terminal, a missing TOTP code is an authentication failure with a hint.
    let nurse_login = ["login", "--username", "nurse.sato", "--password-stdin"];
    let refused = nurse
        .run(&nurse_login, Some(&nurse_stdin))
        .await
        .expect(3)
        .reports(ErrorCode::TotpRequired);
    assert!(
        refused.stderr.contains("確認コードが必要です"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--totp CODE"), "{}", refused.stderr);
    assert!(!nurse.credentials_path().exists());

    let totp = nurse_app.next_code().await;
    let login = nurse
        .run(
            &[&nurse_login[..], &["--totp", &totp, "--json"]].concat(),
            Some(&nurse_stdin),
        )
        .await
        .expect(0)
        .json();
    assert_eq!(login["pending"], json!([]));
    let stored = nurse.assert_private_login("nurse.sato", &[nurse_password]);
    assert_eq!(json!(stored.session_id), login["session_id"]);

    // Logout ended every earlier session: this login's is the only one.
    let sessions = nurse
        .run(&["sessions", "--json"], None)
        .await
        .expect(0)
        .json();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], login["session_id"]);
    assert_eq!(sessions[0]["current"], json!(true));
    assert!(
        sessions[0]["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("tsunagu-cli/"),
        "{sessions:?}"
    );

    let whoami = nurse.run(&["whoami"], None).await.expect(0);
    for expected in [
        "nurse.sato",
        "佐藤 花子",
        "看護師 Nurse",
        "みどり訪問看護ステーション",
        server.base_url.as_str(),
    ] {
        assert!(whoami.stdout.contains(expected), "{}", whoami.stdout);
    }

    // A wrong password fails with 3 and leaves the stored login alone.
    nurse
        .run(&nurse_login, Some("not-her-password-2026\n"))
        .await
        .expect(3)
        .reports(ErrorCode::AuthenticationFailed);
    assert_eq!(nurse.stored(), Some(stored));
    nurse.run(&["whoami"], None).await.expect(0);

    // A nurse is no administrator (4); the system administrator may list the users.
    nurse
        .run(&["admin", "users", &org_id], None)
        .await
        .expect(4)
        .reports(ErrorCode::Forbidden);
    let users = admin
        .run(&["admin", "users", &org_id, "--json"], None)
        .await
        .expect(0)
        .json();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        (
            &users[0]["username"],
            &users[0]["role"],
            &users[0]["totp_enabled"]
        ),
        (&json!("nurse.sato"), &json!("nurse"), &json!(true))
    );

    // Logout deletes the credentials and ends the session on the server.
    let last = nurse.stored().unwrap();
    nurse.run(&["logout"], None).await.expect(0);
    assert!(!nurse.credentials_path().exists());
    nurse.run(&["whoami"], None).await.expect(3);
    assert_code(
        server.client().authed(last.tokens()).me().await,
        ErrorCode::SessionExpired,
    );
    admin.run(&["logout"], None).await.expect(0);
    assert!(!admin.credentials_path().exists());

    // ----- Nothing secret was printed or logged -----
    let passwords = [one_time.as_str(), admin_password, nurse_password];
    let mut never_printed: Vec<String> = passwords.iter().map(|p| (*p).to_owned()).collect();
    for person in [&admin, &nurse, &stranger] {
        never_printed.extend(person.tokens.borrow().iter().cloned());
    }
    never_printed.sort();
    never_printed.dedup();
    // Two logins and a password change, an invitation and a login: at least 8 tokens.
    assert!(
        never_printed.len() >= passwords.len() + 8,
        "tokens were seen"
    );
    for person in [&admin, &nurse, &stranger] {
        for output in person.transcript.borrow().iter() {
            for secret in &never_printed {
                assert!(
                    !output.contains(secret.as_str()),
                    "a password or token was printed:\n{output}"
                );
            }
        }
    }

    let mut secrets = never_printed;
    secrets.extend([code, admin_totp_secret, nurse_totp_secret]);
    secrets.extend(admin_recovery_codes);
    secrets.extend(nurse_recovery_codes);
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
