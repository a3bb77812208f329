//! Who may talk to the JSON-RPC server: MultiChain's (Bitcoin Core 0.10's) `rpcallowip` subnets
//! and `rpcbind` addresses (MULTICHAIN.md §1.4).
//!
//! - Without `rpcallowip` the server listens on 127.0.0.1 only and `rpcbind` is ignored (with a
//!   warning), as bitcoind does: nobody else can connect at all.
//! - With `rpcallowip` it listens on 0.0.0.0, or on each `rpcbind` address, and answers every
//!   request from an address outside the allowed subnets with HTTP 403. Loopback (127.0.0.0/8,
//!   ::1) is always allowed.
//!
//! A subnet is a single IP (`1.2.3.4`), a network/CIDR (`1.2.3.0/24`) or a network/netmask
//! (`1.2.3.0/255.255.255.0`); IPv6 works the same way. Options may be repeated and each value
//! may be a comma-separated list.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One allowed network: the address with the host bits cleared, and the prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - width))
    }
}

fn from_bits(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports for an IPv4
/// peer) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl Subnet {
    /// Parses `IP`, `IP/CIDR` or `IP/NETMASK`, with bitcoind's error message.
    pub fn parse(spec: &str) -> Result<Subnet, String> {
        let invalid = || {
            format!(
                "Invalid -rpcallowip subnet specification: {spec}. Valid are a single IP (e.g. 1.2.3.4), a network/netmask (e.g. 1.2.3.4/255.255.255.0) or a network/CIDR (e.g. 1.2.3.4/24)."
            )
        };
        let spec_t = spec.trim();
        let (ip_text, suffix) = match spec_t.split_once('/') {
            Some((ip, s)) => (ip, Some(s)),
            None => (spec_t, None),
        };
        let ip: IpAddr = ip_text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| invalid())?;
        let ip = canonical(ip);
        let (value, width) = bits(ip);
        let prefix = match suffix {
            None => width,
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                let p: u8 = s.parse().map_err(|_| invalid())?;
                if p > width {
                    return Err(invalid());
                }
                p
            }
            Some(s) => {
                // A netmask of the same family, with contiguous one bits.
                let m: IpAddr = s.parse().map_err(|_| invalid())?;
                let (m, mw) = bits(m);
                if mw != width {
                    return Err(invalid());
                }
                let ones = m.count_ones() as u8;
                if mask(ones, width) != m {
                    return Err(invalid());
                }
                ones
            }
        };
        Ok(Subnet {
            network: from_bits(value & mask(prefix, width), ip),
            prefix,
        })
    }

    /// Parses one option value: a comma-separated list of subnets.
    pub fn parse_list(value: &str) -> Result<Vec<Subnet>, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Subnet::parse)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|v| {
                if v.is_empty() {
                    Err(Subnet::parse(value).unwrap_err())
                } else {
                    Ok(v)
                }
            })
    }

    /// Whether `ip` is in this subnet (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let (v, width) = bits(ip);
        let (n, _) = bits(self.network);
        v & mask(self.prefix, width) == n
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == width {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// The addresses allowed to use the JSON-RPC server: loopback always, plus the `rpcallowip`
/// subnets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    pub subnets: Vec<Subnet>,
}

impl AllowList {
    pub fn new(subnets: Vec<Subnet>) -> AllowList {
        AllowList { subnets }
    }

    /// Loopback, or in one of the subnets.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.subnets.iter().any(|s| s.contains(ip))
    }
}

/// Where the server listens, from the `rpcallowip` subnets, the `rpcbind` values and the RPC
/// port: `(host, port)` pairs, plus a warning to show when `rpcbind` was ignored.
///
/// As bitcoind: no `rpcallowip` → 127.0.0.1 only (and `rpcbind` ignored); `rpcallowip` without
/// `rpcbind` → 0.0.0.0; otherwise each `rpcbind` value (`IP`, `IP:PORT`, `[IPv6]:PORT`, `HOST`
/// or `HOST:PORT`; the RPC port when none is given).
pub fn endpoints(
    allow: &[Subnet],
    bind: &[String],
    port: u16,
) -> (Vec<(String, u16)>, Option<String>) {
    if allow.is_empty() {
        let warning = (!bind.is_empty()).then(|| {
            "option -rpcbind was ignored because -rpcallowip was not specified, refusing to allow everyone to connect".to_string()
        });
        return (vec![("127.0.0.1".into(), port)], warning);
    }
    if bind.is_empty() {
        return (vec![("0.0.0.0".into(), port)], None);
    }
    let list = bind
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| split_host_port(b, port))
        .collect();
    (list, None)
}

fn split_host_port(value: &str, default_port: u16) -> (String, u16) {
    if let Ok(sa) = value.parse::<std::net::SocketAddr>() {
        return (sa.ip().to_string(), sa.port());
    }
    let unbracketed = value.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return (ip.to_string(), default_port);
    }
    match value.rsplit_once(':') {
        Some((host, p)) if p.parse::<u16>().is_ok() => {
            (host.to_string(), p.parse().unwrap_or(default_port))
        }
        _ => (value.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_like_bitcoind() {
        let s = Subnet::parse("192.168.0.0/16").unwrap();
        assert!(s.contains(ip("192.168.4.5")));
        assert!(s.contains(ip("::ffff:192.168.4.5")), "IPv4-mapped peer");
        assert!(!s.contains(ip("192.169.0.1")));
        assert!(!s.contains(ip("::1")));
        assert_eq!(s.to_string(), "192.168.0.0/16");
        // Host bits are cleared; netmask and CIDR are the same network.
        assert_eq!(
            Subnet::parse("10.1.2.3/255.255.0.0").unwrap(),
            Subnet::parse("10.1.0.0/16").unwrap()
        );
        let one = Subnet::parse("10.0.0.7").unwrap();
        assert!(one.contains(ip("10.0.0.7")) && !one.contains(ip("10.0.0.8")));
        assert_eq!(one.to_string(), "10.0.0.7");
        let all = Subnet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001:db8::1")));
        let v6 = Subnet::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Subnet::parse("[2001:db8::1]").is_ok());
        for bad in [
            "*",
            "192.168.*.*",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/255.0.255.0",
            "1.2.3.4/ffff::",
            "host.example",
            "",
            "::1/129",
        ] {
            let e = Subnet::parse(bad).unwrap_err();
            assert!(
                e.starts_with("Invalid -rpcallowip subnet specification"),
                "{bad}: {e}"
            );
        }
        let list = Subnet::parse_list("10.0.0.0/8, 192.168.1.1").unwrap();
        assert_eq!(list.len(), 2);
        assert!(Subnet::parse_list(",").is_err());
        assert!(Subnet::parse_list("10.0.0.0/8,nope").is_err());
    }

    #[test]
    fn loopback_is_always_allowed() {
        let none = AllowList::default();
        assert!(none.allows(ip("127.0.0.1")) && none.allows(ip("127.1.2.3")));
        assert!(none.allows(ip("::1")) && none.allows(ip("::ffff:127.0.0.1")));
        assert!(!none.allows(ip("192.0.2.2")));
        let some = AllowList::new(Subnet::parse_list("192.0.2.0/24").unwrap());
        assert!(some.allows(ip("192.0.2.2")) && some.allows(ip("::ffff:192.0.2.9")));
        assert!(!some.allows(ip("198.51.100.1")) && !some.allows(ip("fd00::2")));
    }

    #[test]
    fn endpoints_follow_rpcallowip_and_rpcbind() {
        let allow = Subnet::parse_list("192.168.0.0/16").unwrap();
        let bind = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Loopback only without rpcallowip; rpcbind alone is ignored with a warning.
        assert_eq!(
            endpoints(&[], &[], 8570),
            (vec![("127.0.0.1".into(), 8570)], None)
        );
        let (e, w) = endpoints(&[], &bind(&["0.0.0.0"]), 8570);
        assert_eq!(e, vec![("127.0.0.1".to_string(), 8570)]);
        assert!(w.unwrap().contains("-rpcbind was ignored"));
        // Every address with rpcallowip alone.
        assert_eq!(
            endpoints(&allow, &[], 8570),
            (vec![("0.0.0.0".into(), 8570)], None)
        );
        // rpcbind values, with or without a port.
        let (e, w) = endpoints(
            &allow,
            &bind(&[
                "192.168.1.5",
                "127.0.0.1:9000,[::1]:9001",
                "::1",
                "myhost:7",
            ]),
            8570,
        );
        assert_eq!(w, None);
        assert_eq!(
            e,
            vec![
                ("192.168.1.5".to_string(), 8570),
                ("127.0.0.1".to_string(), 9000),
                ("::1".to_string(), 9001),
                ("::1".to_string(), 8570),
                ("myhost".to_string(), 7),
            ]
        );
    }
}
