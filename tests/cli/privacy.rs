//! "No patient data leaves the machine", checked rather than claimed: a whole
//! clinical flow on the command line (read a real DICOM, render it, draft with
//! the tiny model, search, show, export as bundle, Markdown and FHIR, import)
//! runs under `strace -f -e trace=network`, and no IPv4 or IPv6 socket is
//! ever created, connected or bound by the app or any thread or child of it.

use std::path::PathBuf;
use std::process::Command;

use crate::trace::inet_calls;

fn strace_run(log: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_medgemma-desk"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("strace runs (installed by `make test`)");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

pub(crate) fn dicom() -> PathBuf {
    let fetch = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom/fetch.sh");
    let out = Command::new("bash").arg(fetch).arg("--quiet").output().expect("bash runs");
    assert!(out.status.success(), "fetch.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap()).join("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm")
}

/// The check can fail: the same trace of a program that opens an IPv4 socket sees it.
#[test]
fn the_trace_sees_a_socket_when_there_is_one() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("control.log");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(&log)
        .args(["python3", "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)"])
        .output()
        .expect("strace and python3 run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(inet_calls(&text).len(), 1, "the control socket was not seen:\n{text}");
    let netlink = "42 recvmsg(5, {msg_name={sa_family=AF_NETLINK}, ... rtm_family=AF_INET ...}) = 1224";
    assert!(inet_calls(netlink).is_empty(), "reading the routing table is not network use");
}

#[test]
fn a_clinical_flow_opens_no_network_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let dcm = dicom();
    let dcm = dcm.to_str().unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model");
    let model = model.to_str().unwrap();
    let file = |name: &str| tmp.path().join(name).display().to_string();
    let (png, bundle, md, fhir) = (file("x.png"), file("s.mgdesk.json"), file("r.md"), file("r.json"));
    let steps: Vec<Vec<&str>> = vec![
        vec!["info", dcm, "--json"],
        vec!["render", dcm, "-o", &png],
        vec!["--data-dir", d, "draft", "--model", model, "--image", dcm, "--indication", "Cough", "--max-tokens", "16", "--json"],
        vec!["--data-dir", d, "sessions", "search", "cough", "--json"],
        vec!["--data-dir", d, "sessions", "show", "1", "--json"],
        vec!["--data-dir", d, "sessions", "export", "1", "-o", &bundle],
        vec!["--data-dir", d, "sessions", "export", "1", "--format", "markdown", "-o", &md],
        vec!["--data-dir", d, "sessions", "export", "1", "--format", "fhir", "-o", &fhir],
        vec!["--data-dir", d, "sessions", "import", &bundle],
        vec!["--data-dir", d, "sessions", "list", "--json"],
    ];
    let mut traced_calls = 0;
    for (i, args) in steps.iter().enumerate() {
        let log = tmp.path().join(format!("strace-{i}.log"));
        strace_run(&log, args);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        traced_calls += text.lines().count();
        let inet = inet_calls(&text);
        assert!(inet.is_empty(), "{args:?} touched the network:\n{}", inet.join("\n"));
    }
    // The flow really ran: the draft is kept and searchable, the exports exist.
    for f in [&md, &fhir, &bundle] {
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{f}");
    }
    eprintln!("privacy: {} steps traced, {traced_calls} network-class system calls seen, none IPv4/IPv6", steps.len());
}
