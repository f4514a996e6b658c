//! Headless Chromium and Debian's poppler-utils for tests of the print views: an HTML file
//! printed to PDF ([`print_to_pdf`]) the way a browser prints it, its page count
//! ([`pdf_page_count`]), its text ([`pdf_text`]) and its first page as a PNG
//! ([`first_page_png`]) for a look by eye.
//!
//! Chromium is `TSUNAGU_CHROMIUM` (a path, or a name on `PATH`), else the first of
//! `chromium`, `chromium-browser` and `google-chrome` on `PATH`. Tests that need it call
//! [`find_chromium`] first and, when it is absent, print a line starting with `SKIPPED: `
//! (see [`skipped`]), which `.ci/run` turns into a failure. On Debian:
//! `apt-get install chromium poppler-utils fonts-noto-cjk`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

/// Names (or paths) Chromium is looked for by, after `TSUNAGU_CHROMIUM`.
pub const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];
/// The environment variable naming the Chromium binary.
pub const CHROMIUM_VAR: &str = "TSUNAGU_CHROMIUM";
/// Longest a print may take before Chromium is killed.
pub const PRINT_TIMEOUT: Duration = Duration::from_secs(90);

/// Says on the real stderr (past the test harness's capture, so that `.ci/run` sees it) that a
/// test was skipped: a line `SKIPPED: <reason>`.
pub fn skipped(reason: &str) {
    let line = format!("\nSKIPPED: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// An executable file called `name` in a directory of `PATH`, or `name` itself when it is a
/// path to an executable file.
fn find_executable(name: &OsString) -> Option<PathBuf> {
    let as_path = Path::new(name);
    if as_path.components().count() > 1 {
        return is_executable(as_path).then(|| as_path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(as_path))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// The Chromium binary: `TSUNAGU_CHROMIUM`, else `chromium`, `chromium-browser` or
/// `google-chrome` on `PATH`; `None` when there is none.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os(CHROMIUM_VAR).filter(|named| !named.is_empty()) {
        return find_executable(&named);
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| find_executable(&OsString::from(name)))
}

/// Whether this process runs as root (Chromium's sandbox refuses to start as root).
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return meta.uid() == 0;
        }
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// A `file://` URL for an absolute path, with every byte outside the unreserved set (and `/`)
/// percent-encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: usize) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_end(&mut text);
    }
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Prints `html_file` to `pdf_file` with headless Chromium (A4 unless the page's `@page`
/// says otherwise, without the browser's header and footer, backgrounds as the page's CSS
/// asks), in a throw-away profile, killing Chromium after [`PRINT_TIMEOUT`].
///
/// # Errors
/// Chromium not found, failing, timing out, or writing no PDF.
pub fn print_to_pdf(html_file: &Path, pdf_file: &Path) -> anyhow::Result<()> {
    let chromium = find_chromium().with_context(|| {
        format!(
            "Chromium not found: install it (Debian: apt-get install chromium) or set {CHROMIUM_VAR}"
        )
    })?;
    let html = std::path::absolute(html_file)
        .with_context(|| format!("absolute path of {}", html_file.display()))?;
    ensure!(html.is_file(), "{} is not a file", html.display());
    let pdf = std::path::absolute(pdf_file)
        .with_context(|| format!("absolute path of {}", pdf_file.display()))?;
    if pdf.exists() {
        std::fs::remove_file(&pdf).with_context(|| format!("remove {}", pdf.display()))?;
    }
    let profile = tempfile::Builder::new()
        .prefix("tsunagu-chromium-")
        .tempdir()
        .context("create a Chromium profile directory")?;
    let log = profile.path().join("chromium.log");
    let log_file = File::create(&log).context("create the Chromium log")?;

    let mut command = Command::new(&chromium);
    command
        .arg("--headless")
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .arg("--disable-extensions")
        .arg("--disable-background-networking")
        .arg("--no-first-run")
        .arg("--no-default-browser-check")
        .arg("--hide-scrollbars")
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()));
    if running_as_root() {
        command.arg("--no-sandbox");
    }
    command
        .arg(file_url(&html))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().context("share the Chromium log")?)
        .stderr(log_file);
    let mut child = command
        .spawn()
        .with_context(|| format!("start {}", chromium.display()))?;
    let deadline = Instant::now() + PRINT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for Chromium")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "Chromium did not print {} within {PRINT_TIMEOUT:?}; its log ends:\n{}",
                html.display(),
                tail(&log, 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(
        status.success(),
        "Chromium failed ({status}) printing {}; its log ends:\n{}",
        html.display(),
        tail(&log, 4000)
    );
    let mut head = [0_u8; 5];
    let written = File::open(&pdf).and_then(|mut file| file.read_exact(&mut head));
    ensure!(
        written.is_ok() && &head == b"%PDF-",
        "Chromium wrote no PDF at {}; its log ends:\n{}",
        pdf.display(),
        tail(&log, 4000)
    );
    Ok(())
}

/// Runs a poppler-utils program and returns its standard output.
fn poppler(program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<Vec<u8>> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {program} (Debian: apt-get install poppler-utils)"))?;
    ensure!(
        output.status.success(),
        "{program} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

/// The number of pages of a PDF (poppler's `pdfinfo`).
///
/// # Errors
/// `pdfinfo` missing or failing, or no page count in its output.
pub fn pdf_page_count(pdf: &Path) -> anyhow::Result<u32> {
    let info = poppler("pdfinfo", &[pdf.as_os_str()])?;
    let info = String::from_utf8_lossy(&info);
    info.lines()
        .find_map(|line| line.strip_prefix("Pages:"))
        .and_then(|pages| pages.trim().parse().ok())
        .with_context(|| format!("no page count in pdfinfo's output:\n{info}"))
}

/// The text of a PDF in reading order with its layout (poppler's `pdftotext -layout`).
///
/// # Errors
/// `pdftotext` missing or failing.
pub fn pdf_text(pdf: &Path) -> anyhow::Result<String> {
    let text = poppler(
        "pdftotext",
        &[
            "-layout".as_ref(),
            "-enc".as_ref(),
            "UTF-8".as_ref(),
            pdf.as_os_str(),
            "-".as_ref(),
        ],
    )?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Renders the first page of a PDF as a PNG at 100 dpi (poppler's
/// `pdftoppm -png -r 100 -f 1 -l 1 -singlefile`).
///
/// # Errors
/// `pdftoppm` missing or failing, or no PNG written.
pub fn first_page_png(pdf: &Path, png: &Path) -> anyhow::Result<()> {
    // pdftoppm appends ".png" to the prefix it is given.
    let prefix = png.with_extension("");
    let written = prefix.with_extension("png");
    poppler(
        "pdftoppm",
        &[
            "-png".as_ref(),
            "-r".as_ref(),
            "100".as_ref(),
            "-f".as_ref(),
            "1".as_ref(),
            "-l".as_ref(),
            "1".as_ref(),
            "-singlefile".as_ref(),
            pdf.as_os_str(),
            prefix.as_os_str(),
        ],
    )?;
    if written != png {
        std::fs::rename(&written, png)
            .with_context(|| format!("move {} to {}", written.display(), png.display()))?;
    }
    let mut head = [0_u8; 8];
    let read = File::open(png).and_then(|mut file| file.read_exact(&mut head));
    ensure!(
        read.is_ok() && head == *b"\x89PNG\r\n\x1a\n",
        "pdftoppm wrote no PNG at {}",
        png.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_japanese_page_prints_to_one_pdf_page_and_a_png() {
        if find_chromium().is_none() {
            skipped(
                "chromium not installed (apt-get install chromium poppler-utils fonts-noto-cjk)",
            );
            return;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let html = dir.path().join("page with space.html");
        std::fs::write(
            &html,
            "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\"><title>試験</title>\
             <style>@page { size: A4; margin: 15mm } body { font-family: \"Noto Sans CJK JP\", \
             \"IPAexGothic\", \"IPAGothic\", sans-serif }</style></head>\
             <body><p>救急医療情報</p><p>蘇生処置を希望しない</p></body></html>\n",
        )
        .expect("write the page");
        let pdf = dir.path().join("page.pdf");
        print_to_pdf(&html, &pdf).expect("print to PDF");
        assert_eq!(pdf_page_count(&pdf).expect("page count"), 1);
        let text = pdf_text(&pdf).expect("text of the PDF");
        assert!(text.contains("救急医療情報"), "{text}");
        assert!(text.contains("蘇生処置を希望しない"), "{text}");
        let png = dir.path().join("page.png");
        first_page_png(&pdf, &png).expect("render the first page");
        let size = std::fs::metadata(&png).expect("the PNG").len();
        assert!(size > 1_000, "a PNG of {size} bytes");
        // A4 at 100 dpi: about 827 × 1169 pixels (the IHDR chunk holds width and height).
        let bytes = std::fs::read(&png).expect("read the PNG");
        let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        assert!(
            (826..=828).contains(&width) && (1168..=1171).contains(&height),
            "{width} × {height} is not A4 at 100 dpi"
        );
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/印刷.html")),
            "file:///tmp/a%20b/%E5%8D%B0%E5%88%B7.html"
        );
    }
}
