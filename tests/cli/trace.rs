//! Reading an `strace -e trace=network` log for network use. Shared by the
//! command-line and the window privacy tests.

/// The traced calls that create, connect, bind or send on an IPv4/IPv6
/// socket. (Netlink route dumps mention AF_INET too; they are not network use.)
pub(crate) fn inet_calls(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| {
            let call = l.split_once(' ').map_or(*l, |(_, rest)| rest.trim_start());
            let ip = |s: &str| s.contains("AF_INET") || s.contains("PF_INET");
            (call.starts_with("socket(") && ip(&call[..call.find(',').unwrap_or(call.len())]))
                || (["connect(", "bind(", "sendto(", "sendmsg(", "accept(", "accept4("].iter().any(|c| call.starts_with(c))
                    && (call.contains("sa_family=AF_INET")))
        })
        .collect()
}
