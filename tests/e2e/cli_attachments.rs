//! Attachments with the `tsunagu` CLI: a nurse posts with `--attach` (a wrong type refused
//! before anything is posted), `history` lists the attachments, and the family member saves
//! one with `attachment get`: under its own name, privately, never over an existing file
//! without `--force`, or to stdout with `-o -`.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{OrganisationKind, Role};

use crate::cli::{ConfigBy, Tsunagu};
use crate::support::{Person, bootstrap_admin, onboard, organisation, room_with_consent};

/// Logs `person` in with the CLI (password on stdin, a TOTP code when the role needs one).
async fn cli_login(server: &TestServer, person: &mut Person, totp: bool) -> Tsunagu {
    let cli = Tsunagu::new(server, ConfigBy::Option);
    let mut args = vec![
        "login".to_owned(),
        "--username".to_owned(),
        person.username.clone(),
        "--password-stdin".to_owned(),
    ];
    if totp {
        args.push("--totp".to_owned());
        args.push(person.authenticator.next_code().await);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli.run(&args, Some(&format!("{}\n", person.password)))
        .await
        .expect(0);
    cli
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let station = organisation(
        &admin.session,
        "つばさ訪問看護",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (mut nurse, _) = onboard(
        &client,
        &admin.session,
        &station,
        Role::Nurse,
        "nurse.tsubasa",
    )
    .await;
    let (mut family, _) = onboard(
        &client,
        &admin.session,
        &station,
        Role::Family,
        "tsubasa.kazoku",
    )
    .await;
    let room = room_with_consent(&nurse.session, "翼 太郎").await;
    let family_id = family.session.me().await.unwrap().user.id;
    nurse.session.invite_member(room, family_id).await.unwrap();
    family
        .session
        .respond_to_invitation(room, true)
        .await
        .unwrap();
    let room = room.to_string();

    let files = tempfile::tempdir().unwrap();
    let photo_path = files.path().join("CLI-NAME-足の写真.jpg");
    let mut photo = vec![0xff, 0xd8, 0xff, 0xe1];
    photo.extend_from_slice(b"CLI-CONTENT-photo");
    photo.extend((0..=255_u8).cycle().take(400_000));
    std::fs::write(&photo_path, &photo).unwrap();
    let letter_path = files.path().join("CLI-NAME-letter.pdf");
    let letter = b"%PDF-1.4\nCLI-CONTENT-letter\n%%EOF\n".to_vec();
    std::fs::write(&letter_path, &letter).unwrap();
    let fake_path = files.path().join("CLI-NAME-fake.jpg");
    std::fs::write(&fake_path, "<html>CLI-CONTENT-fake</html>").unwrap();

    let nurse_cli = cli_login(&server, &mut nurse, true).await;
    // A wrong type is refused; nothing is posted.
    let head = nurse
        .session
        .timeline_head(room.parse().unwrap())
        .await
        .unwrap();
    nurse_cli
        .run(
            &["post", &room, "x", "--attach", fake_path.to_str().unwrap()],
            None,
        )
        .await
        .expect(6)
        .reports(ErrorCode::UnsupportedMediaType);
    assert_eq!(
        nurse
            .session
            .timeline_head(room.parse().unwrap())
            .await
            .unwrap(),
        head
    );
    // Two files, no text, for everyone.
    let posted = nurse_cli
        .run(
            &[
                "post",
                &room,
                "",
                "--visibility",
                "everyone",
                "--attach",
                photo_path.to_str().unwrap(),
                "--attach",
                letter_path.to_str().unwrap(),
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let attachments = posted["attachments"].as_array().unwrap();
    let media: Vec<&str> = attachments
        .iter()
        .map(|a| a["media_type"].as_str().unwrap())
        .collect();
    assert_eq!(media, ["image/jpeg", "application/pdf"]);
    assert_eq!(attachments[0]["byte_size"], Value::from(photo.len() as u64));
    let photo_id = attachments[0]["attachment_id"].as_str().unwrap().to_owned();
    let letter_id = attachments[1]["attachment_id"].as_str().unwrap().to_owned();

    // The family sees them in its history and saves them.
    let family_cli = cli_login(&server, &mut family, false).await;
    let history = family_cli.run(&["history", &room], None).await.expect(0);
    assert!(
        history
            .stdout
            .contains("添付 attachment: CLI-NAME-足の写真.jpg  image/jpeg  "),
        "{}",
        history.stdout
    );
    assert!(history.stdout.contains(&photo_id), "{}", history.stdout);

    let downloads = tempfile::tempdir().unwrap();
    let dir = Some(downloads.path());
    family_cli
        .run_in(dir, &["attachment", "get", &room, &photo_id], None)
        .await
        .expect(0);
    let saved = downloads.path().join("CLI-NAME-足の写真.jpg");
    assert_eq!(std::fs::read(&saved).unwrap(), photo);
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600,
        "a saved attachment is private"
    );
    // Never over an existing file, unless asked.
    std::fs::write(&saved, b"mine").unwrap();
    family_cli
        .run_in(dir, &["attachment", "get", &room, &photo_id], None)
        .await
        .expect(6);
    assert_eq!(std::fs::read(&saved).unwrap(), b"mine");
    family_cli
        .run_in(
            dir,
            &["attachment", "get", &room, &photo_id, "--force"],
            None,
        )
        .await
        .expect(0);
    assert_eq!(std::fs::read(&saved).unwrap(), photo);
    let names: Vec<_> = std::fs::read_dir(downloads.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    // To stdout; and a chosen path.
    let out = family_cli
        .run(&["attachment", "get", &room, &letter_id, "-o", "-"], None)
        .await
        .expect(0);
    assert_eq!(out.stdout.as_bytes(), letter.as_slice());
    let chosen = downloads.path().join("copy.pdf");
    let saved = family_cli
        .run(
            &[
                "attachment",
                "get",
                &room,
                &letter_id,
                "-o",
                chosen.to_str().unwrap(),
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(saved["file_name"], "CLI-NAME-letter.pdf");
    assert_eq!(std::fs::read(&chosen).unwrap(), letter);
    // An unknown attachment is not found.
    family_cli
        .run(
            &[
                "attachment",
                "get",
                &room,
                &tsunagu_protocol::AttachmentId::generate().to_string(),
            ],
            None,
        )
        .await
        .expect(5)
        .reports(ErrorCode::NotFound);

    let mut secrets: Vec<String> = ["CLI-NAME", "CLI-CONTENT", "足の写真", "翼 太郎"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for person in [&admin, &nurse, &family] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
