//! The window, not only the command line, opens no IPv4/IPv6 socket: the app
//! started on a real DICOM file under `strace -f -e trace=network` (no
//! WebDriver, whose own localhost connection would muddy the trace), left to
//! start, open the image and keep it as a session, then closed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

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

/// The same matcher as tests/cli/privacy.rs (kept in step by hand: the two
/// test targets share no module).
fn inet_calls(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| {
            let call = l.split_once(' ').map_or(*l, |(_, rest)| rest.trim_start());
            let ip = |s: &str| s.contains("AF_INET") || s.contains("PF_INET");
            (call.starts_with("socket(") && ip(&call[..call.find(',').unwrap_or(call.len())]))
                || (["connect(", "bind(", "sendto(", "sendmsg(", "accept(", "accept4("].iter().any(|c| call.starts_with(c))
                    && call.contains("sa_family=AF_INET"))
        })
        .collect()
}
