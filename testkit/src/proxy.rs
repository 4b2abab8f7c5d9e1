//! A TCP proxy in front of a dependency, for fault tests. `up` forwards; `down` refuses new
//! connections and cuts open ones, as a stopped server would; `silent` keeps every connection
//! open and accepts new ones but forwards nothing either way, as a partitioned or hung peer
//! would: the case timeouts exist for.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Down,
    Silent,
}

pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    /// A proxy to `target`, up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watch) = watch::channel(Mode::Up);
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if *watch.borrow() == Mode::Down {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(forward(inbound, target, watch.clone()));
            }
        });
        Proxy { port, mode }
    }

    /// `postgres://…@host:port/db` with the host and port replaced by this proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}127.0.0.1:{}/{path}", self.port)
    }

    pub fn up(&self) {
        self.mode.send_replace(Mode::Up);
    }

    pub fn down(&self) {
        self.mode.send_replace(Mode::Down);
    }

    pub fn silent(&self) {
        self.mode.send_replace(Mode::Silent);
    }
}

async fn forward(inbound: TcpStream, target: SocketAddr, mode: watch::Receiver<Mode>) {
    let outbound = loop {
        if *mode.borrow() == Mode::Down {
            return;
        }
        // A silent proxy holds a new connection open without reaching the target.
        if *mode.borrow() == Mode::Up {
            match TcpStream::connect(target).await {
                Ok(s) => break s,
                Err(_) => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (ri, wi) = inbound.into_split();
    let (ro, wo) = outbound.into_split();
    tokio::select! {
        () = pump(ri, wo, mode.clone()) => {}
        () = pump(ro, wi, mode.clone()) => {}
    }
}

/// Copies one direction while up; holds what it read while silent; ends when down.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Down {
                    return;
                }
                continue;
            }
        };
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Mode::Down => return,
                Mode::Up => break,
                Mode::Silent => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
