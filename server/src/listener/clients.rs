//! Requests in flight (and, for the listener, connections open) per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// What one client controls: an IPv4 address, or the /64 of an IPv6 address (one
/// host or site typically has a whole /64, so counting single IPv6 addresses would
/// give it 2^64 fresh starts). IPv4-mapped IPv6 addresses are their IPv4 address.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// The client has `max_requests_per_client` requests in flight already.
#[derive(Debug)]
pub struct TooMany;

/// Requests in flight per client address.
pub struct Clients {
    /// Requests one address may have in flight; 0 = no limit.
    pub max: usize,
    in_flight: Mutex<HashMap<IpAddr, usize>>,
}

impl Clients {
    /// At most `max` requests per address (0: no limit).
    pub fn new(max: usize) -> Clients {
        Clients {
            max,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Count a request of `ip`: a permit held until the request is done, `None` when
    /// the limit is off.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<Option<ClientPermit>, TooMany> {
        if self.max == 0 {
            return Ok(None);
        }
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return Ok(None);
        };
        let count = in_flight.entry(ip).or_insert(0);
        if *count >= self.max {
            return Err(TooMany);
        }
        *count += 1;
        Ok(Some(ClientPermit {
            clients: self.clone(),
            ip,
        }))
    }
}

/// One request of a client in flight.
pub struct ClientPermit {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.clients.in_flight.lock() {
            if let Some(count) = in_flight.get_mut(&self.ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_flight.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_max_permits_and_its_slots_come_back() {
        let clients = Arc::new(Clients::new(2));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = clients.enter(a).expect("first");
        let second = clients.enter(a).expect("second");
        assert!(clients.enter(a).is_err(), "a third is refused");
        assert!(clients.enter(b).expect("another client").is_some());
        drop(first);
        let third = clients.enter(a).expect("a slot came back");
        drop((second, third));
        assert!(
            clients.in_flight.lock().expect("lock").is_empty(),
            "idle clients are forgotten"
        );
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let clients = Arc::new(Clients::new(0));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let permits: Vec<_> = (0..1000).map(|_| clients.enter(a)).collect();
        assert!(permits.iter().all(|p| matches!(p, Ok(None))));
    }
}
