//! Listening sockets. Every shard gets its own `SO_REUSEPORT` socket on the same port so the
//! kernel spreads connections over the shards (design.md §3). All sockets are bound here on
//! the starting thread, before the shards run, so a port-0 request is resolved exactly once.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// Backlog of each listening socket.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds `count` sockets sharing one port. With port 0, the first socket picks the port and
/// the others join it.
pub fn bind_reuseport_group(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = bind_reuseport(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_reuseport(bound)?);
    }
    Ok(listeners)
}

/// Shard-addressed layout: one socket per shard on its own port, shard `s` on `addr`'s port
/// + `s × step` (with port 0, each shard gets a free port of its own).
pub fn bind_per_shard(addr: SocketAddr, count: usize, step: u16) -> io::Result<Vec<TcpListener>> {
    (0..count)
        .map(|shard| {
            let port = if addr.port() == 0 {
                0
            } else {
                u16::try_from(usize::from(addr.port()) + shard * usize::from(step)).map_err(
                    |_| io::Error::new(io::ErrorKind::InvalidInput, "shard port out of range"),
                )?
            };
            bind_reuseport(SocketAddr::new(addr.ip(), port))
        })
        .collect()
}

/// One non-blocking listening socket with SO_REUSEADDR and SO_REUSEPORT.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A plain listener (no port sharing) for single-owner services: name server, HA, metrics.
pub fn bind_single(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_zero_group_shares_one_chosen_port() {
        let listeners = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }
}
