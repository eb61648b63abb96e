//! Command-line pieces every service binary shares: the `healthcheck`
//! subcommand a container's HEALTHCHECK runs (a scratch image has no shell
//! or curl), the `--http-addr ADDR|off` value, and the server-limit flags
//! ([`LimitsArgs`]).

use std::net::SocketAddr;
use std::str::FromStr;

/// The subcommands of every service binary.
#[derive(clap::Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCommand {
    /// Exits 0 when the server at --addr answers SERVING (for container
    /// health checks).
    Healthcheck,
}

/// Environment variable of `--drain-delay-ms`.
pub const DRAIN_DELAY_MS_ENV: &str = "TRIAD_DRAIN_DELAY_MS";

/// The server-limit flags every service binary shares (flattened into its
/// command line); the rest of [`crate::ServerLimits`] keeps its defaults.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitsArgs {
    /// On shutdown, how long health says NOT_SERVING (HTTP /health 503)
    /// while requests are still served, before the ports close, in
    /// milliseconds (default 0).
    #[arg(long, env = DRAIN_DELAY_MS_ENV)]
    pub drain_delay_ms: Option<u64>,
}

impl LimitsArgs {
    /// Writes the flags given into `limits`.
    pub fn apply(&self, limits: &mut crate::ServerLimits) {
        if let Some(ms) = self.drain_delay_ms {
            limits.drain_delay = std::time::Duration::from_millis(ms);
        }
    }
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
