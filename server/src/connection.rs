//! One client connection: read frames, dispatch each request, write the responses.
//! Being written under issue 4.

use std::net::SocketAddr;

use compio::net::TcpStream;

/// Serves one connection until the peer closes it.
pub async fn serve(stream: TcpStream, peer: SocketAddr) {
    let _ = (stream, peer);
}
