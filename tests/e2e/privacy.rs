//! The window, not only the command line, opens no IPv4/IPv6 socket: the app
//! started on a real DICOM file under `strace -f -e trace=network` (no
//! WebDriver, whose own localhost connection would muddy the trace), left to
//! start, open the image and keep it as a session, then closed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::trace::inet_calls;
use crate::viewer::dev_set_file;

#[test]
#[ignore = "needs a display and strace: run by `make test` under Xvfb"]
fn the_window_opens_no_network_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("trace.log");
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let mut child = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(&log)
        .arg(crate::harness::app_binary())
        .arg("--data-dir")
        .arg(&data)
        .arg(&cr)
        .spawn()
        .expect("strace runs (installed by `make test`)");
    // Until the opened study is kept as a session (its image file is in the store).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kept = walk(&data.join("images")).len();
        if kept == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the window never kept the opened image as a session");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    // Close the app itself (strace then ends with it).
    let _ = std::process::Command::new("pkill").args(["-TERM", "-f", &format!("medgemma-desk --data-dir {}", data.display())]).status();
    crate::harness::wait_at_most(&mut child, Duration::from_secs(30), "the traced window, closed with SIGTERM,");
    let trace = std::fs::read_to_string(&log).unwrap();
    let inet = inet_calls(&trace);
    assert!(inet.is_empty(), "the window touched the network:\n{}", inet.join("\n"));
    assert!(trace.lines().count() > 0, "the trace saw the window's local sockets at all");
    let _: PathBuf = log;
}

/// Every file under `dir` (none if it does not exist yet).
pub(crate) fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}


/// A whole case in the window, driven as a clinician does it, with the app
/// under `strace -f -e trace=network`: open a real DICOM, type the
/// indication, draft with the tiny model, start the report from the draft,
/// edit and sign it, export it as Markdown through the save dialog, and
/// search for it. WebKitWebDriver drives the page through WebKit's automation
/// channel, which the web process reaches over 127.0.0.1 at the address
/// WebKitWebDriver hands it; that one loopback address is the test's own and
/// is allowed. Any other IPv4/IPv6 socket use fails the test.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display, tauri-driver, xdotool and strace: run by `make test` under Xvfb"]
async fn a_whole_case_in_the_window_opens_no_network_socket() {
    use crate::harness::App;
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("trace.log");
    let wrapper = tmp.path().join("traced-app");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv > '{}'\nexec strace -f -qq -e trace=network -o '{}' '{}' \"$@\"\n",
            tmp.path().join("env.txt").display(),
            log.display(),
            crate::harness::app_binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_program(&wrapper, crate::drafting::data_dir_with_model(), &[cr.to_str().unwrap()], &[]).await;

    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.type_into("[data-testid=notes-indication]", "Cough and fever").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;
    app.click("[data-testid=draft-button]").await;
    crate::drafting::watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 1).await;
    app.click("[data-testid=use-draft]").await;
    app.type_into("[data-testid=report-editor]", " No pneumothorax.").await;
    app.wait_for_text("[data-testid=report-save-state]", "Saved").await;
    app.click("[data-testid=sign-final]").await;
    app.wait_for_text("[data-testid=signed-report]", "No pneumothorax").await;

    // Export as Markdown and as PDF: the system's save dialog, answered with a path.
    let out = tmp.path().join("report.md");
    app.click("[data-testid=export-markdown]").await;
    answer_save_dialog(&out);
    app.wait_for_text("[data-testid=export-note]", "report.md").await;
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains("No pneumothorax") && exported.contains("AI"), "{exported}");
    let pdf = tmp.path().join("report.pdf");
    app.click("[data-testid=export-pdf]").await;
    answer_save_dialog(&pdf);
    app.wait_for_text("[data-testid=export-note]", "report.pdf").await;
    let text = std::process::Command::new("pdftotext").arg(&pdf).arg("-").output().expect("pdftotext runs");
    let text = String::from_utf8_lossy(&text.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("No pneumothorax") && text.contains("Started from an AI draft"), "the window's PDF:\n{text}");

    // Search finds the case by its report.
    app.type_into("[data-testid=session-search]", "pneumothorax").await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.quit().await;

    let trace = std::fs::read_to_string(&log).unwrap();
    if let Ok(keep) = std::env::var("KEEP_TRACE") {
        std::fs::write(&keep, &trace).unwrap();
        std::fs::copy(tmp.path().join("env.txt"), format!("{keep}.env")).unwrap();
    }
    assert!(trace.lines().count() > 0, "the trace saw the window at all");
    let env = std::fs::read_to_string(tmp.path().join("env.txt")).unwrap();
    let server = env.lines().find_map(|l| l.strip_prefix("WEBKIT_INSPECTOR_SERVER=")).unwrap_or_default().to_string();
    let channel = channel_sockets(&trace, &server);
    let inet: Vec<&str> = inet_calls(&trace).into_iter().filter(|l| !channel.contains(l) && !automation_channel(l, &server)).collect();
    assert!(inet.is_empty(), "the window touched the network:\n{}", inet.join("\n"));
}

/// The `socket(AF_INET…)` lines of the trace that made an automation-channel
/// socket: the first use of the returned descriptor by the same process
/// (setting its options aside) is a bind or connect to the automation server. Every other IPv4/IPv6 socket,
/// even one never connected, is not the harness's and fails the test.
fn channel_sockets<'a>(trace: &'a str, server: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = trace.lines().collect();
    let split = |l: &'a str| l.split_once(' ').map_or(("", l), |(pid, rest)| (pid, rest.trim_start()));
    let returned = |l: &str| l.rsplit_once("= ").and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok());
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (pid, call) = split(line);
        if !(call.starts_with("socket(AF_INET") || call.starts_with("socket(AF_INET6")) {
            continue;
        }
        // An interrupted call ends in its "<... socket resumed>" line.
        let fd = if call.ends_with("<unfinished ...>") {
            lines[i + 1..].iter().map(|l| split(l)).find(|(p, c)| *p == pid && c.starts_with("<... socket resumed>")).and_then(|(_, c)| returned(c))
        } else {
            returned(call)
        };
        let Some(fd) = fd else { continue };
        let first_use = lines[i + 1..].iter().find(|l| {
            let (p, c) = split(l);
            let on_fd = c.split_once('(').is_some_and(|(_, args)| args.starts_with(&format!("{fd},")) || args.starts_with(&format!("{fd})")));
            // Setting options is not a use (the channel's server sets SO_REUSEADDR before binding).
            p == pid && on_fd && !c.starts_with("setsockopt(") && !c.starts_with("getsockopt(")
        });
        if first_use.is_some_and(|l| {
            let (_, c) = split(l);
            (c.starts_with("bind(") || c.starts_with("connect(")) && automation_channel(l, server)
        }) {
            found.push(*line);
        }
    }
    found
}

/// WebKit's automation channel to WebKitWebDriver: the automation server at
/// `server` (WEBKIT_INSPECTOR_SERVER, e.g. "127.0.0.1:32913", handed to the
/// app by WebKitWebDriver), bound there, connected to, and accepting loopback
/// peers (the sockets made for it are found by `channel_sockets`). Any other
/// bind or connect to an IP address, and any send to one, is not this channel.
fn automation_channel(line: &str, server: &str) -> bool {
    let call = line.split_once(' ').map_or(line, |(_, rest)| rest.trim_start());
    let Some((host, port)) = server.split_once(':') else { return false };
    let at_server = call.contains(&format!("sin_port=htons({port})")) && call.contains(&format!("inet_addr(\"{host}\")"));
    ((call.starts_with("bind(") || call.starts_with("connect(")) && at_server && host == "127.0.0.1")
        || ((call.starts_with("accept(") || call.starts_with("accept4(")) && call.contains("inet_addr(\"127.0.0.1\")"))
}

/// The trace filter itself: the automation channel's sockets pass; an
/// IPv4/IPv6 socket the app makes for anything else fails, even one it never
/// connects.
#[test]
fn only_the_automation_channels_sockets_are_allowed() {
    let server = "127.0.0.1:59119";
    let trace = "\
10 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 20
10 setsockopt(20, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
10 bind(20, {sa_family=AF_INET, sin_port=htons(59119), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0
11 socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 21
11 close(21) = 0
12 socket(AF_INET, SOCK_STREAM, IPPROTO_IP <unfinished ...>
12 <... socket resumed>) = 7
12 connect(7, {sa_family=AF_INET, sin_port=htons(59119), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0
13 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 8
13 connect(8, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"142.250.1.1\")}, 16) = 0
14 socket(AF_UNIX, SOCK_STREAM, 0) = 3
";
    let channel = channel_sockets(trace, server);
    let stray: Vec<&str> = inet_calls(trace).into_iter().filter(|l| !channel.contains(l) && !automation_channel(l, server)).collect();
    assert_eq!(
        stray,
        [
            "11 socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 21",
            "13 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 8",
            "13 connect(8, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"142.250.1.1\")}, 16) = 0",
        ]
    );
}

/// Answers the app's "Export the report" save dialog with `path`, by real key
/// presses (XTEST) into the focused dialog: the name field has the focus and
/// takes a whole path. Only a visible dialog: an earlier export's dialog may
/// still exist, unmapped.
fn answer_save_dialog(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let dialog = loop {
        let found = std::process::Command::new("xdotool").args(["search", "--onlyvisible", "--name", "^Export the report$"]).output().unwrap();
        if let Some(id) = String::from_utf8_lossy(&found.stdout).lines().next() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the save dialog never opened");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(500));
    let xdo = |args: &[&str]| std::process::Command::new("xdotool").args(args).status().unwrap();
    xdo(&["windowfocus", "--sync", &dialog]);
    xdo(&["key", "ctrl+a"]);
    xdo(&["type", "--delay", "20", path.to_str().unwrap()]);
    xdo(&["key", "Return"]);
}
