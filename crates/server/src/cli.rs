//! Command-line pieces every service binary shares: the `healthcheck`
//! subcommand a container's HEALTHCHECK runs (a scratch image has no shell
//! or curl), and the `--http-addr ADDR|off` value.

use std::net::SocketAddr;
use std::str::FromStr;

/// The subcommands of every service binary.
#[derive(clap::Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCommand {
    /// Exits 0 when the server at --addr answers SERVING (for container
    /// health checks).
    Healthcheck,
}

/// `--http-addr`: an address, or `off` (or empty) for no HTTP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAddr(pub Option<SocketAddr>);

impl FromStr for HttpAddr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        value
            .parse()
            .map(|addr| Self(Some(addr)))
            .map_err(|error| format!("{value:?} is not an address (host:port) or `off`: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_addr_is_an_address_or_off() {
        assert_eq!("off".parse(), Ok(HttpAddr(None)));
        assert_eq!("".parse(), Ok(HttpAddr(None)));
        assert_eq!(
            "127.0.0.1:8080".parse(),
            Ok(HttpAddr(Some("127.0.0.1:8080".parse().unwrap())))
        );
        assert!("8080".parse::<HttpAddr>().unwrap_err().contains("`off`"));
    }
}
